package viewmodel

import (
	"context"
	"time"
)

// Subscriber is an engine that signals every change of spend, state or
// settings; *watchdog.Watchdog is one.
type Subscriber interface {
	Source
	Subscribe() (<-chan struct{}, func())
}

// Feed rebuilds the view whenever the engine signals a change and hands it
// to a function (the windows, through fyne.Do).
type Feed struct {
	Engine Subscriber
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Options are passed to Build; CapIsDefault is asked again for each
	// build.
	Options Options
	// CapIsDefault reports whether no cap was ever chosen (nil: false).
	CapIsDefault func() bool
	// MinInterval spaces rebuilds during a burst of requests (default
	// 250ms): a loop settling hundreds of requests a second updates the
	// tray a few times a second, not hundreds (each change of a tray
	// label rebuilds the desktop's copy of the menu).
	MinInterval time.Duration
	// Tick rebuilds this often even without a change (default one
	// minute), because "the last 15 minutes" and the day move on by
	// themselves.
	Tick time.Duration
}

// Run builds the view once, then again on every change, calling show with
// each, until ctx ends.
func (f *Feed) Run(ctx context.Context, show func(View)) {
	now := f.Now
	if now == nil {
		now = time.Now
	}
	minGap := f.MinInterval
	if minGap <= 0 {
		minGap = 250 * time.Millisecond
	}
	tick := f.Tick
	if tick <= 0 {
		tick = time.Minute
	}
	changes, stop := f.Engine.Subscribe()
	defer stop()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		o := f.Options
		if f.CapIsDefault != nil {
			o.CapIsDefault = f.CapIsDefault()
		}
		show(Build(ctx, f.Engine, now(), o))
		// Space rebuilds out; changes meanwhile are coalesced by the
		// engine's one-slot channel and picked up below.
		gap := time.NewTimer(minGap)
		select {
		case <-ctx.Done():
			gap.Stop()
			return
		case <-gap.C:
		}
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-ticker.C:
		}
	}
}
