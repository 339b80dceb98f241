// Package report writes the incident report of one local day: what was
// spent, minute by minute (a chart), by which scripts, models and
// endpoints, what keycap's guards did about it, the first and last
// expensive request, and keycap's figures next to OpenAI's. It is a
// self-contained HTML page a person can hand to a colleague, and a PNG
// chart drawn with the standard library.
//
// It reads the ledger only, so it works whether or not the engine runs.
package report

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/reconcile"
)

// Ledger is what a report reads; *ledger.DB is one.
type Ledger interface {
	DayEntries(ctx context.Context, day string) ([]ledger.Entry, error)
	Events(ctx context.Context, limit int) ([]ledger.Event, error)
}

var _ Ledger = (*ledger.DB)(nil)

// DefaultExpensive is the cost from which a request counts as expensive.
const DefaultExpensive = money.Cent

// GuardKinds are the event kinds of keycap stepping in; the report lists
// every event of the day and counts these.
var GuardKinds = []string{"loop_warning", "loop_blocked", "spend_rate", "retry_storm", "threshold", "cap_reached", "paused",
	"token_denied", reconcile.EventKind}

// Options say how to build a report.
type Options struct {
	// Location is the time zone of the cap's day (default time.Local).
	Location *time.Location
	// Cap is the daily cap, drawn on the chart; 0 leaves it out.
	Cap money.USD
	// OpenAI is the comparison with OpenAI's figures, if there is one.
	OpenAI *reconcile.Snapshot
	// OpenAINote says why there is none ("needs an admin key…").
	OpenAINote string
	// ExpensiveAt is the cost from which a request is expensive (default
	// one cent).
	ExpensiveAt money.USD
	// Now stamps the report (default time.Now).
	Now func() time.Time
}

// Report is one day's account, ready to render.
type Report struct {
	Day       string
	Location  *time.Location
	Generated time.Time
	Cap       money.USD

	// Spent and Requests count real requests: rehearsals (sent to keycap's
	// free stand-in) are counted apart.
	Spent             money.USD
	Requests          int
	Estimated         int // charged at keycap's estimate: no exact usage came back
	Failed            int // upstream answered an error (4xx/5xx) or nothing
	Rehearsed         money.USD
	RehearsedRequests int
	// First and Last are when the first and last real request started.
	First, Last time.Time

	// Bins is spend over the chart's window, Bin wide each.
	Bins []Bin
	Bin  time.Duration
	// Zoom is the busiest hour minute by minute, when Bins covers more.
	Zoom []Bin
	// Peak is the minute (or bin, without Zoom) with the most spend.
	Peak Bin

	Scripts   []Line
	Models    []Line
	Endpoints []Line

	// Events are the day's events, oldest first; Guards counts those of
	// GuardKinds.
	Events       []ledger.Event
	Guards       int
	CapReachedAt time.Time

	ExpensiveAt    money.USD
	Expensive      int
	FirstExpensive *ledger.Entry
	LastExpensive  *ledger.Entry
	// Costliest are the ten dearest requests, rehearsals included (and
	// marked), dearest first.
	Costliest []ledger.Entry

	OpenAI     *reconcile.Snapshot
	OpenAINote string
}

// Bin is spend over one bin of the timeline.
type Bin struct {
	Start      time.Time
	Spent      money.USD
	Requests   int
	Cumulative money.USD // spent from midnight to the end of the bin
}

// Line is one row of a top-N table.
type Line struct {
	Name     string
	Spent    money.USD
	Requests int
	// Share is the fraction of the day's spend.
	Share float64
}

// Build reads one local day (YYYY-MM-DD) from the ledger.
func Build(ctx context.Context, db Ledger, day string, o Options) (*Report, error) {
	loc := o.Location
	if loc == nil {
		loc = time.Local
	}
	start, err := time.ParseInLocation(time.DateOnly, day, loc)
	if err != nil {
		return nil, fmt.Errorf("%q is not a day like 2025-04-23", day)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	r := &Report{Day: day, Location: loc, Generated: now(), Cap: o.Cap, ExpensiveAt: o.ExpensiveAt, OpenAINote: o.OpenAINote}
	if r.ExpensiveAt <= 0 {
		r.ExpensiveAt = DefaultExpensive
	}
	if o.OpenAI != nil && o.OpenAI.Day == day {
		r.OpenAI = o.OpenAI
	}
	entries, err := db.DayEntries(ctx, day)
	if err != nil {
		return nil, err
	}
	scripts, models, endpoints := map[string]*Line{}, map[string]*Line{}, map[string]*Line{}
	add := func(m map[string]*Line, name string, e ledger.Entry) {
		l := m[name]
		if l == nil {
			l = &Line{Name: name}
			m[name] = l
		}
		l.Spent += e.Charged()
		l.Requests++
	}
	var real []ledger.Entry
	for _, e := range entries {
		if e.Rehearsed {
			r.Rehearsed += e.Charged()
			r.RehearsedRequests++
			continue
		}
		real = append(real, e)
		r.Spent += e.Charged()
		r.Requests++
		if !e.Exact {
			r.Estimated++
		}
		if e.Status == 0 || e.Status >= 400 {
			r.Failed++
		}
		if r.First.IsZero() || e.Start.Before(r.First) {
			r.First = e.Start
		}
		if e.Start.After(r.Last) {
			r.Last = e.Start
		}
		add(scripts, orDash(e.Label), e)
		add(models, orDash(e.Model), e)
		add(endpoints, orDash(e.Endpoint), e)
		if e.Charged() >= r.ExpensiveAt {
			r.Expensive++
			if r.FirstExpensive == nil || e.Start.Before(r.FirstExpensive.Start) {
				r.FirstExpensive = &e
			}
			if r.LastExpensive == nil || !e.Start.Before(r.LastExpensive.Start) {
				r.LastExpensive = &e
			}
		}
	}
	r.Scripts, r.Models, r.Endpoints = top(scripts, r.Spent), top(models, r.Spent), top(endpoints, r.Spent)
	r.Costliest = slices.Clone(entries)
	slices.SortStableFunc(r.Costliest, func(a, b ledger.Entry) int { return cmp.Compare(b.Charged(), a.Charged()) })
	r.Costliest = r.Costliest[:min(len(r.Costliest), 10)]
	r.timeline(real, start)

	// Events come newest first across all days; a day of a runaway loop
	// holds at most a few hundred (the guards fold repeats).
	evs, err := db.Events(ctx, 5000)
	if err != nil {
		return nil, err
	}
	slices.Reverse(evs) // oldest first, so events of one moment keep their order
	for _, ev := range evs {
		if ev.Day != day {
			continue
		}
		r.Events = append(r.Events, ev)
		if slices.Contains(GuardKinds, ev.Kind) {
			r.Guards++
		}
		if ev.Kind == "cap_reached" && (r.CapReachedAt.IsZero() || ev.At.Before(r.CapReachedAt)) {
			r.CapReachedAt = ev.At
		}
	}
	slices.SortStableFunc(r.Events, func(a, b ledger.Event) int { return a.At.Compare(b.At) })
	return r, nil
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// top sorts the lines dearest first and keeps eight, folding the rest
// into "others".
func top(m map[string]*Line, total money.USD) []Line {
	var out []Line
	for _, l := range m {
		out = append(out, *l)
	}
	slices.SortFunc(out, func(a, b Line) int {
		if c := cmp.Compare(b.Spent, a.Spent); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	if len(out) > 8 {
		rest := Line{Name: fmt.Sprintf("%d others", len(out)-7)}
		for _, l := range out[7:] {
			rest.Spent += l.Spent
			rest.Requests += l.Requests
		}
		out = append(out[:7], rest)
	}
	for i := range out {
		if total > 0 {
			out[i].Share = float64(out[i].Spent) / float64(total)
		}
	}
	return out
}

// niceBins are the bin widths the chart uses, in minutes.
var niceBins = []int{1, 2, 5, 10, 15, 30, 60}

// timeline bins the day's real spend: per minute over the active span
// (with a little margin), in wider bins when the span is long, so that the
// chart has at most 360 bars; and, when the bins are wider than a minute
// or the span longer than two hours, the busiest hour minute by minute.
func (r *Report) timeline(entries []ledger.Entry, dayStart time.Time) {
	r.Bin = time.Minute
	if len(entries) == 0 {
		return
	}
	from := r.First.Add(-5 * time.Minute).Truncate(5 * time.Minute)
	to := r.Last.Add(6 * time.Minute).Truncate(5 * time.Minute)
	if from.Before(dayStart) {
		from = dayStart
	}
	if end := dayStart.AddDate(0, 0, 1); to.After(end) {
		to = end
	}
	if to.Sub(from) < 30*time.Minute {
		to = from.Add(30 * time.Minute)
	}
	span := int(to.Sub(from) / time.Minute)
	for _, m := range niceBins {
		r.Bin = time.Duration(m) * time.Minute
		if span/m <= 360 {
			break
		}
	}
	r.Bins = bin(entries, from.Truncate(r.Bin), to, r.Bin)
	for _, b := range r.Bins {
		if b.Spent > r.Peak.Spent {
			r.Peak = b
		}
	}
	if r.Bin == time.Minute && span <= 120 {
		return
	}
	// The busiest hour, on five-minute boundaries.
	minutes := bin(entries, from, to, time.Minute)
	best := money.USD(-1)
	var ties []int // the starts of the hours with the most spend
	for i := 0; i < len(minutes); i += 5 {
		var sum money.USD
		for _, m := range minutes[i:min(i+60, len(minutes))] {
			sum += m.Spent
		}
		switch {
		case sum > best:
			best, ties = sum, []int{i}
		case sum == best:
			ties = append(ties, i)
		}
	}
	// Of equally busy hours, the middle one puts a burst mid-chart.
	zf := minutes[ties[len(ties)/2]].Start
	r.Zoom = bin(entries, zf, zf.Add(time.Hour), time.Minute)
	r.Peak = Bin{}
	for _, b := range r.Zoom {
		if b.Spent > r.Peak.Spent {
			r.Peak = b
		}
	}
}

// bin adds up entries in bins of width from from to to, each with the
// day's running total at its end.
func bin(entries []ledger.Entry, from, to time.Time, width time.Duration) []Bin {
	n := int((to.Sub(from) + width - 1) / width)
	out := make([]Bin, n)
	for i := range out {
		out[i].Start = from.Add(time.Duration(i) * width)
	}
	var before money.USD // spent earlier in the day than the window
	for _, e := range entries {
		i := int(e.Start.Sub(from) / width)
		switch {
		case e.Start.Before(from):
			before += e.Charged()
		case i < n:
			out[i].Spent += e.Charged()
			out[i].Requests++
		}
	}
	cum := before
	for i := range out {
		cum += out[i].Spent
		out[i].Cumulative = cum
	}
	return out
}

// Headline is the report's first sentence: how much, how fast, and what
// keycap did.
func (r *Report) Headline() string {
	if r.Requests == 0 {
		if r.RehearsedRequests > 0 {
			return fmt.Sprintf("No real spend on %s: %d rehearsed request(s) went to keycap's stand-in and cost nothing.", r.Day, r.RehearsedRequests)
		}
		return fmt.Sprintf("No requests went through keycap on %s.", r.Day)
	}
	hm := func(t time.Time) string { return t.In(r.Location).Format("15:04") }
	s := fmt.Sprintf("%s spent in %d request(s) between %s and %s", r.Spent, r.Requests, hm(r.First), hm(r.Last))
	if r.Cap > 0 {
		s += fmt.Sprintf(", %.0f%% of the %s daily cap", 100*float64(r.Spent)/float64(r.Cap), r.Cap)
	}
	s += "."
	if r.Peak.Spent > 0 {
		s += fmt.Sprintf(" The busiest %s was %s (%s).", binName(r.PeakWidth()), hm(r.Peak.Start), r.Peak.Spent)
	}
	if !r.CapReachedAt.IsZero() {
		s += fmt.Sprintf(" The cap was reached at %s and keycap refused what came after.", hm(r.CapReachedAt))
	}
	return s
}

// PeakWidth is the width of the Peak bin.
func (r *Report) PeakWidth() time.Duration {
	if len(r.Zoom) > 0 {
		return time.Minute
	}
	return r.Bin
}

// binName names a bin width for sentences: "minute", "5 minutes".
func binName(d time.Duration) string {
	if d == time.Minute {
		return "minute"
	}
	if d == time.Hour {
		return "hour"
	}
	return fmt.Sprintf("%d minutes", int(d/time.Minute))
}
