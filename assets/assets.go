// Package assets holds keycap's icons, embedded: the application icon and one
// tray icon per state (under budget, past a warning threshold, cap reached,
// paused, no key). Each is a keycap whose colour and glyph say the state, with
// a dark rim so it reads on light and dark panels alike. gen.go draws them.
package assets

import _ "embed" // the icons are embedded

//go:generate go run gen.go

// Icon is the application icon, 512×512 PNG.
//
//go:embed icon.png
var Icon []byte

// Tray icons, 64×64 PNG.
var (
	//go:embed tray-ok.png
	TrayOK []byte
	//go:embed tray-warn.png
	TrayWarn []byte
	//go:embed tray-cap.png
	TrayCap []byte
	//go:embed tray-paused.png
	TrayPaused []byte
	//go:embed tray-nokey.png
	TrayNoKey []byte
)
