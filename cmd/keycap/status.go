package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keycap/keycap/watchdog/budget"
	"github.com/keycap/keycap/watchdog/control"
	"github.com/keycap/keycap/watchdog/money"
)

func runStatus(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "status", "[--json]")
	asJSON := fs.Bool("json", false, "print as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := tooMany(e, fs, 0); err != nil {
		return err
	}
	s, err := e.client().Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e, s)
	}
	printStatus(e, s)
	return nil
}

func printStatus(e *env, s control.Status) {
	w := e.stdout
	fmt.Fprintf(w, "keycap is running (process %d), proxy %s → %s\n", s.PID, s.ProxyURL, s.Upstream)
	fmt.Fprintf(w, "Today (%s, %s): %s spent of %s cap, %s reserved in flight, %s left\n", s.Day, s.Timezone, s.Spent, s.Cap, s.Reserved, s.Remaining)
	state := "running"
	switch {
	case s.Paused:
		state = "PAUSED (" + s.PauseWhy + ") — resume with `keycap resume`"
	case s.CapReached:
		state = "CAP REACHED — requests refused until tomorrow; raise it with `keycap cap DOLLARS`"
	}
	fmt.Fprintf(w, "State: %s\n", state)
	key := s.Key
	if !s.KeyPresent {
		key = "none — " + s.KeyProblem
	}
	fmt.Fprintf(w, "API key: %s\n", key)
	fmt.Fprintf(w, "Requests today: %d; live tokens: %d\n", s.Requests, s.LiveTokens)
	for _, line := range s.OpenAILines {
		fmt.Fprintln(w, line)
	}
	if s.Untracked > 0 {
		fmt.Fprintf(w, "Counted against the cap: %s spent outside keycap (count_untracked_against_cap).\n", s.Untracked)
	}
	if len(s.ByModel) > 0 {
		fmt.Fprintf(w, "By model:  %s\n", shares(s.ByModel))
		fmt.Fprintf(w, "By script: %s\n", shares(s.ByLabel))
	}
	if s.Notifications != "" && s.Notifications != "on" {
		fmt.Fprintf(w, "Desktop notifications: %s (events are still recorded: `keycap events`)\n", s.Notifications)
	}
	for _, b := range s.Blocks {
		fmt.Fprintf(w, "Loop blocked: %s %s %s from %q, %d repeats (%s); lift with `keycap allow %s`\n", b.ID, b.Endpoint, b.Model, b.Label, b.Count, b.Spent, b.ID)
	}
	if s.Rehearsing {
		fmt.Fprintln(w, "Rehearsal mode: ON — requests go to keycap's stand-in, nothing is paid (`keycap rehearse off` to stop)")
	}
	if s.RehearsedRequests > 0 {
		fmt.Fprintf(w, "Rehearsed today: %d requests that would have cost %s (not counted against the cap)\n", s.RehearsedRequests, s.RehearsedSpent)
	}
	if s.Recovered > 0 {
		fmt.Fprintf(w, "Note: %d request(s) were in flight when keycap last stopped; they are counted at their estimate.\n", s.Recovered)
	}
}

func shares(ss []budget.Share) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		name := s.Name
		if name == "" {
			name = "(none)"
		}
		parts[i] = name + " " + s.Spent.String()
	}
	return strings.Join(parts, ", ")
}

func runCap(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "cap", "[DOLLARS]")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := tooMany(e, fs, 1); err != nil {
		return err
	}
	c := e.client()
	if fs.NArg() == 0 {
		s, err := c.Status(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Daily cap: %s (%s spent today, %s left).\n", s.Cap, s.Spent, s.Remaining)
		return nil
	}
	v, err := money.Parse(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("the cap must be an amount in dollars, like 5 or 12.50: %w", err)
	}
	s, err := c.SetCap(ctx, v)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Daily cap set to %s (%s spent today, %s left). It applies now.\n", s.Cap, s.Spent, s.Remaining)
	return nil
}

func runPause(ctx context.Context, e *env, args []string, pause bool) error {
	name := "resume"
	if pause {
		name = "pause"
	}
	fs := flags(e, name, "")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := tooMany(e, fs, 0); err != nil {
		return err
	}
	c := e.client()
	if pause {
		if _, err := c.Pause(ctx); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "Paused: every request and every new token is refused until `keycap resume`.")
		return nil
	}
	if _, err := c.Resume(ctx); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "Resumed: requests go through again, within the daily cap.")
	return nil
}

func runRevoke(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "revoke", "ID | --all")
	all := fs.Bool("all", false, "revoke every live token")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := tooMany(e, fs, 1); err != nil {
		return err
	}
	if *all == (fs.NArg() == 1) {
		fmt.Fprintln(e.stderr, "keycap revoke: give one token id (see `keycap status`) or --all")
		return errUsage
	}
	r, err := e.client().Revoke(ctx, control.RevokeRequest{ID: fs.Arg(0), All: *all})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Revoked %d token(s).\n", r.Revoked)
	return nil
}

func runLog(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "log", "[-n 20] [--json]")
	n := fs.Int("n", 20, "how many requests")
	asJSON := fs.Bool("json", false, "print as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := tooMany(e, fs, 0); err != nil {
		return err
	}
	es, err := e.client().Log(ctx, *n)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e, es)
	}
	if len(es) == 0 {
		fmt.Fprintln(e.stdout, "No requests yet.")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSCRIPT\tENDPOINT\tMODEL\tCOST\tSTATUS\tNOTE")
	for _, x := range es {
		cost, how := x.Cost, "exact"
		if x.State == "reserved" {
			cost, how = x.Estimate, "reserved"
		} else if !x.Exact {
			how = "estimated"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s %s\t%d\t%s\n", x.Start.Local().Format(time.TimeOnly), x.Label, x.Endpoint, x.Model, cost, how, x.Status, x.Note)
	}
	return tw.Flush()
}

func runEvents(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "events", "[-n 20] [--json]")
	n := fs.Int("n", 20, "how many events")
	asJSON := fs.Bool("json", false, "print as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := tooMany(e, fs, 0); err != nil {
		return err
	}
	es, err := e.client().Events(ctx, *n)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e, es)
	}
	if len(es) == 0 {
		fmt.Fprintln(e.stdout, "No events yet.")
		return nil
	}
	for _, x := range es {
		label := ""
		if x.Label != "" {
			label = " [" + x.Label + "]"
		}
		fmt.Fprintf(e.stdout, "%s  %-12s%s %s\n", x.At.Local().Format(time.DateTime), x.Kind, label, x.Message)
	}
	return nil
}
