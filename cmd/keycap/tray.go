package main

import (
	"context"
	"errors"
)

func runTray(ctx context.Context, e *env, args []string) error {
	return errors.New("the tray app is not built yet; run `keycap serve` for the engine without a window")
}
