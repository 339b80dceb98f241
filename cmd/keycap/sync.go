package main

import (
	"context"
	"fmt"
	"time"
)

// runSync asks the running engine to read OpenAI's usage and costs now,
// rather than at its next interval, and prints the comparison.
func runSync(ctx context.Context, e *env, args []string) error {
	fl := flags(e, "sync", "[--json]")
	asJSON := fl.Bool("json", false, "print as JSON")
	if err := parse(fl, args); err != nil {
		return err
	}
	if err := tooMany(e, fl, 0); err != nil {
		return err
	}
	s, err := e.client().SyncOpenAI(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e, s)
	}
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil || s.Timezone == "" {
		loc = time.Local
	}
	for _, line := range s.Summary(loc) {
		fmt.Fprintln(e.stdout, line)
	}
	return nil
}
