//go:build cgo || ci

package main

import (
	"context"
	"errors"

	"github.com/keycap/keycap/app"
)

// runTray starts the desktop app: the engine, as `keycap serve` runs it
// (listen address and upstream from config.toml), plus a tray icon and
// windows. Closing a window hides it; Quit in the tray menu, or Ctrl-C,
// stops both.
func runTray(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "", "")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := tooMany(e, fs, 0); err != nil {
		return err
	}
	if err := app.CheckDisplay(); err != nil {
		return err
	}
	w, err := openEngine(e, "", "")
	if err != nil {
		return err
	}
	defer w.Close()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	// The windows need the main goroutine, which run() is on.
	uiErr := app.Run(ctx, app.Options{Engine: w, Keys: e.keys, Logger: e.log})
	cancel()
	return errors.Join(uiErr, <-done)
}
