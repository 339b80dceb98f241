package main

import (
	"context"
	"fmt"

	"github.com/keycap/keycap/watchdog/control"
)

// runAllow lifts loop blocks.
func runAllow(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "allow", "BLOCK-ID | SCRIPT | TOKEN-ID | --all")
	all := fs.Bool("all", false, "lift every loop block")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := tooMany(e, fs, 1); err != nil {
		return err
	}
	if *all == (fs.NArg() == 1) {
		fmt.Fprintln(e.stderr, "keycap allow: give a block id (see `keycap status`), a script or a token id, or --all")
		return errUsage
	}
	r, err := e.client().Allow(ctx, control.AllowRequest{Who: fs.Arg(0), All: *all})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Lifted %d loop block(s); those requests go through again (and are blocked again if they keep repeating).\n", r.Lifted)
	return nil
}
