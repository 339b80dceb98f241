//go:build !cgo && !ci

package main

import (
	"context"
	"errors"
)

// runTray explains that this build has no desktop app: Fyne's OpenGL
// driver needs cgo.
func runTray(ctx context.Context, e *env, args []string) error {
	return errors.New("this keycap was built without cgo, so it has no tray app; run `keycap serve` for the engine, or build with cgo (`make run`)")
}
