// Package viewmodel turns the engine's state and ledger into what keycap's
// tray and windows show: figures as finished strings, the state that picks
// the tray icon, chart series scaled to the cap, and the settings form with
// its checks. It has no Fyne in it, so all of that is tested without a
// display; the windows in package app only lay it out.
package viewmodel

import (
	"fmt"
	"math"

	"github.com/keycap/keycap/watchdog/control"
)

// State is how keycap stands at a glance; it picks the tray icon.
type State int

// The states, in the order they are checked: the first that holds wins.
const (
	// UnderBudget: spending is allowed and below every warning threshold.
	UnderBudget State = iota
	// Warning: today's spend is past a warning threshold of the cap.
	Warning
	// CapReached: today's cap is spent (or reserved); requests are refused.
	CapReached
	// Paused: the kill switch is on; every token is refused.
	Paused
	// NoKey: no OpenAI API key is stored, so nothing can be forwarded.
	NoKey
)

// String names the state for people.
func (s State) String() string {
	switch s {
	case Warning:
		return "past the warning threshold"
	case CapReached:
		return "cap reached"
	case Paused:
		return "paused"
	case NoKey:
		return "no API key"
	}
	return "under budget"
}

// Icon names the tray icon of the state; package assets has one of each.
func (s State) Icon() string {
	switch s {
	case Warning:
		return "warn"
	case CapReached:
		return "cap"
	case Paused:
		return "paused"
	case NoKey:
		return "nokey"
	}
	return "ok"
}

// StateOf returns the state of st. warnAt holds the warning thresholds as
// fractions of the cap (config.Config.WarnAt); a threshold of 1 is the cap
// itself and does not count as a warning.
func StateOf(st control.Status, warnAt []float64) State {
	switch {
	case !st.KeyPresent:
		return NoKey
	case st.Paused:
		return Paused
	case st.CapReached || st.Spent+st.Reserved >= st.Cap:
		return CapReached
	case passed(st, warnAt) > 0:
		return Warning
	}
	return UnderBudget
}

// passed returns the highest warning threshold below 1 that today's spend
// (with what is reserved) has reached, or 0.
func passed(st control.Status, warnAt []float64) float64 {
	if st.Cap <= 0 {
		return 0
	}
	used := float64(st.Spent+st.Reserved) / float64(st.Cap)
	best := 0.0
	for _, f := range warnAt {
		if f > 0 && f < 1 && used >= f && f > best {
			best = f
		}
	}
	return best
}

// percent formats a fraction as a whole percentage, rounding down so that
// 99.9% never reads as 100%.
func percent(f float64) string {
	if f < 0 || math.IsNaN(f) {
		f = 0
	}
	return fmt.Sprintf("%d%%", int(math.Floor(f*100+1e-9)))
}
