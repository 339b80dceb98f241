package app

import (
	"image/color"

	"fyne.io/fyne/v2"

	"github.com/keycap/keycap/app/viewmodel"
	"github.com/keycap/keycap/assets"
)

// AppIcon is keycap's application and window icon.
var AppIcon = fyne.NewStaticResource("keycap.png", assets.Icon)

// stateIcons are the tray icons, by viewmodel.State.Icon name.
var stateIcons = map[string]fyne.Resource{
	"ok":     fyne.NewStaticResource("keycap-ok.png", assets.TrayOK),
	"warn":   fyne.NewStaticResource("keycap-warn.png", assets.TrayWarn),
	"cap":    fyne.NewStaticResource("keycap-cap.png", assets.TrayCap),
	"paused": fyne.NewStaticResource("keycap-paused.png", assets.TrayPaused),
	"nokey":  fyne.NewStaticResource("keycap-nokey.png", assets.TrayNoKey),
}

// iconFor returns the tray icon of a state.
func iconFor(s viewmodel.State) fyne.Resource {
	if r, ok := stateIcons[s.Icon()]; ok {
		return r
	}
	return AppIcon
}

// stateColor is the colour of a state in the dashboard, matching its icon;
// each reads on the light and the dark theme.
func stateColor(s viewmodel.State) color.Color {
	switch s {
	case viewmodel.Warning:
		return color.NRGBA{0xd9, 0x8e, 0x04, 0xff}
	case viewmodel.CapReached:
		return color.NRGBA{0xe0, 0x2e, 0x3c, 0xff}
	case viewmodel.Paused:
		return color.NRGBA{0x2f, 0x7c, 0xe8, 0xff}
	case viewmodel.NoKey:
		return color.NRGBA{0x8c, 0x95, 0x9f, 0xff}
	}
	return color.NRGBA{0x2d, 0xa4, 0x4e, 0xff}
}

// Chart colours.
var (
	barColor     = color.NRGBA{0x2f, 0x7c, 0xe8, 0xd0}
	currentColor = color.NRGBA{0xf5, 0x8a, 0x07, 0xff}
	overColor    = color.NRGBA{0xe0, 0x2e, 0x3c, 0xff}
	capColor     = color.NRGBA{0xe0, 0x2e, 0x3c, 0xff}
	lineColor    = color.NRGBA{0x8a, 0x4b, 0xd8, 0xff}
)
