package main

import (
	"context"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/keycap/keycap/watchdog/money"
)

// runRehearse turns rehearsal of every request on or off.
func runRehearse(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "rehearse", "on | off")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "on" && fs.Arg(0) != "off") {
		fmt.Fprintln(e.stderr, "keycap rehearse: say on or off (or run one script with `keycap exec --rehearse -- CMD`)")
		return errUsage
	}
	on := fs.Arg(0) == "on"
	if _, err := e.client().SetRehearsing(ctx, on); err != nil {
		return err
	}
	if on {
		fmt.Fprintln(e.stdout, "Rehearsal mode on: every request goes to keycap's stand-in for OpenAI. Nothing is paid; `keycap status` shows what it would have cost.")
	} else {
		fmt.Fprintln(e.stdout, "Rehearsal mode off: requests go to the real API again.")
	}
	return nil
}

// printRehearsal prints what a rehearsed run would have cost: by endpoint
// and model, the rate, what fired, and an hour at that rate.
func printRehearsal(ctx context.Context, e *env, tokenID, label string, started time.Time) error {
	c := e.client()
	entries, err := c.TokenLog(ctx, tokenID)
	if err != nil {
		return err
	}
	events, err := c.Events(ctx, 1000)
	if err != nil {
		return err
	}
	elapsed := time.Since(started)
	type row struct {
		endpoint, model string
		n               int
		cost            money.USD
	}
	rows := map[string]*row{}
	var total money.USD
	for _, x := range entries {
		k := x.Endpoint + "\x00" + x.Model
		r := rows[k]
		if r == nil {
			r = &row{endpoint: x.Endpoint, model: x.Model}
			rows[k] = r
		}
		r.n++
		r.cost += x.Charged()
		total += x.Charged()
	}
	list := make([]*row, 0, len(rows))
	for _, r := range rows {
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].cost > list[j].cost })
	w := e.stderr
	fmt.Fprintf(w, "\nkeycap rehearsal of %q: %d requests in %s, nothing sent to OpenAI, nothing paid.\n", label, len(entries), elapsed.Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ENDPOINT\tMODEL\tREQUESTS\tWOULD COST")
	for _, r := range list {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", r.endpoint, r.model, r.n, r.cost)
	}
	tw.Flush()
	perMin := money.USD(0)
	if m := elapsed.Minutes(); m > 0 {
		perMin = money.USD(float64(total) / m)
	}
	fmt.Fprintf(w, "Would have cost %s: %s a minute, so an hour at this rate would cost %s.\n", total, perMin, perMin*60)
	fired := 0
	for i := len(events) - 1; i >= 0; i-- {
		ev := events[i]
		if ev.At.Before(started) || (ev.Label != "" && ev.Label != label) {
			continue
		}
		switch ev.Kind {
		case "cap_changed", "rehearsal", "resumed", "recovered":
			continue
		}
		if fired == 0 {
			fmt.Fprintln(w, "What keycap did:")
		}
		fired++
		fmt.Fprintf(w, "  %s %s: %s\n", ev.At.Local().Format(time.TimeOnly), ev.Kind, ev.Message)
	}
	if fired == 0 {
		fmt.Fprintln(w, "No guard fired.")
	}
	return nil
}
