package viewmodel

import (
	"fmt"

	"github.com/keycap/keycap/watchdog/control"
)

// Tray is what the tray icon and its menu show.
type Tray struct {
	State State
	// Tooltip is the figures and state on one line, for the dashboard's
	// window title (Fyne 2.7 has no tray tooltip).
	Tooltip string
	// Alert, when set, heads the menu: no key, paused or cap reached.
	Alert string
	// Spend is "Today: $1.23 of $5.00".
	Spend string
	// Reserved is what requests in flight hold right now.
	Reserved string
	// Top names today's top two scripts with what each spent.
	Top []string
	// PauseLabel is the kill switch's label: "Pause all" or "Resume".
	PauseLabel string
	// Paused says which way the kill switch goes.
	Paused bool
}

// Menu labels of the actions, shared by the tray and its tests.
const (
	PauseAll       = "Pause all"
	Resume         = "Resume"
	NewToken       = "New terminal token…"
	OpenDashboard  = "Open dashboard"
	OpenSettings   = "Settings…"
	Quit           = "Quit"
	AlertNoKey     = "No API key: add one in Settings…"
	AlertPaused    = "Paused: every token is refused"
	noScriptsLabel = "(no label)"
)

// TrayOf returns the tray's view of st.
func TrayOf(st control.Status, warnAt []float64) Tray {
	t := Tray{
		State:      StateOf(st, warnAt),
		Spend:      fmt.Sprintf("Today: %s of %s", st.Spent, st.Cap),
		Reserved:   fmt.Sprintf("Reserved right now: %s", st.Reserved),
		PauseLabel: PauseAll,
		Paused:     st.Paused,
	}
	if st.Paused {
		t.PauseLabel = Resume
	}
	for i, s := range st.ByLabel {
		if i == 2 {
			break
		}
		t.Top = append(t.Top, fmt.Sprintf("%s: %s", scriptName(s.Name), s.Spent))
	}
	switch t.State {
	case NoKey:
		t.Alert = AlertNoKey
	case Paused:
		t.Alert = AlertPaused
	case CapReached:
		t.Alert = "Cap reached: requests refused until tomorrow"
	}
	t.Tooltip = fmt.Sprintf("keycap: %s of %s today", st.Spent, st.Cap)
	if t.State != UnderBudget {
		t.Tooltip += " (" + t.State.String() + ")"
	}
	return t
}

// scriptName is a token's label as people see it.
func scriptName(label string) string {
	if label == "" {
		return noScriptsLabel
	}
	return label
}
