package viewmodel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keycap/keycap/watchdog/budget"
	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/control"
	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/problem"
)

// Source is the engine as the view-model reads it; *watchdog.Watchdog is
// one.
type Source interface {
	Status() control.Status
	Config() config.Config
	Ledger() *ledger.DB
}

// View is everything the tray and the windows show at one moment.
type View struct {
	Status    control.Status
	Config    config.Config
	Tray      Tray
	Dashboard Dashboard
}

// Dashboard is what the dashboard window shows.
type Dashboard struct {
	State State
	// Headline is the state in a few words, e.g. "Under budget".
	Headline string
	// Spent is today's spend, big: "$1.23".
	Spent string
	// OfCap follows it: "of $5.00 today".
	OfCap string
	// Used is the part of the cap spent or reserved, 0 to 1.
	Used float64
	// Details are the day's other figures on one line.
	Details string
	// Now says what is costing money right now, in one sentence.
	Now string
	// NowTop lists who spent in the last NowWindow, the largest first.
	NowTop []Spender
	// Pace says when the cap will be reached at the current pace, or "".
	Pace string
	// CapNote invites a first-run user to change the default cap, or "".
	CapNote string
	// KeyNote says which key is in use ("API key sk-…abcd"), or that
	// there is none.
	KeyNote string
	Hours   Series
	Days    Series
	ByModel []Share
	ByLabel []Share
	Recent  []Row
	Events  []EventRow
	// Problem is set when the ledger could not be read; the figures from
	// memory are still right.
	Problem string
}

// Spender is one script's spend on one model in the last NowWindow.
type Spender struct {
	Script, Model, Endpoint string
	Amount                  string
	Requests                int64
}

// Share is one model's or script's part of today's spend.
type Share struct {
	Name   string
	Amount string
	// Percent is its part of the day's spend: "62%".
	Percent string
	// Frac is its size relative to the largest share, 0 to 1, for a bar.
	Frac float64
}

// Row is one request in the recent-requests table.
type Row struct {
	Time, Script, Endpoint, Model, Cost string
	// How is "exact", "estimated", "in flight" or "recovered", and says
	// "rehearsal" for requests that went to the stand-in.
	How string
	// Refused is set for requests the upstream refused (status ≥ 400).
	Refused bool
}

// EventRow is one event: cap reached, a pause, a recovered reservation.
type EventRow struct {
	Time, Kind, Message string
	// Alarm marks events that stopped spending (cap reached, paused).
	Alarm bool
}

// Options tune Build.
type Options struct {
	// NowWindow is how far back "right now" looks (default 15 minutes).
	NowWindow time.Duration
	// Rows is how many recent requests and events to show (default 50).
	Rows int
	// CapIsDefault says no cap was ever chosen (no config.toml yet).
	CapIsDefault bool
}

// DefaultNowWindow is how far back "right now" looks.
const DefaultNowWindow = 15 * time.Minute

// Build reads the engine and its ledger at now and returns the view. It
// always returns a usable view: if the ledger cannot be read, the figures
// the engine keeps in memory are shown and Dashboard.Problem says why.
func Build(ctx context.Context, src Source, now time.Time, o Options) View {
	if o.NowWindow <= 0 {
		o.NowWindow = DefaultNowWindow
	}
	if o.Rows <= 0 {
		o.Rows = 50
	}
	st, cfg := src.Status(), src.Config()
	v := View{Status: st, Config: cfg, Tray: TrayOf(st, cfg.WarnAt)}
	d := &v.Dashboard
	d.State = v.Tray.State
	d.Spent = st.Spent.String()
	d.OfCap = fmt.Sprintf("of %s today", st.Cap)
	d.Headline = headline(st, cfg.WarnAt, d.State)
	if st.Cap > 0 {
		d.Used = min(1, float64(st.Spent+st.Reserved)/float64(st.Cap))
	} else {
		d.Used = 1
	}
	d.Details = details(st)
	d.ByModel = sharesOf(st.ByModel, st.Spent, "(unknown model)")
	d.ByLabel = sharesOf(st.ByLabel, st.Spent, noScriptsLabel)
	if o.CapIsDefault {
		d.CapNote = fmt.Sprintf("Your daily cap is %s, the default. Change it in Settings to what you are willing to spend in a day.", st.Cap)
	}
	if st.KeyPresent {
		d.KeyNote = "API key " + st.Key
	} else {
		d.KeyNote = "No API key yet: add one in Settings. Requests are refused until then."
	}

	loc, err := time.LoadLocation(st.Timezone)
	if err != nil || st.Timezone == "" {
		loc = time.Local
	}
	db := src.Ledger()
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	keep(d.fillNow(ctx, db, st, now, o.NowWindow))
	keep(d.fillHours(ctx, db, st, loc, now))
	keep(d.fillDays(ctx, db, st, loc))
	keep(d.fillRecent(ctx, db, loc, now, o.Rows))
	keep(d.fillEvents(ctx, db, loc, now, o.Rows))
	if len(errs) > 0 {
		d.Problem = "Could not read the ledger, so the charts may be incomplete: " + problem.MessageOf(errors.Join(errs...))
	}
	return v
}

func headline(st control.Status, warnAt []float64, s State) string {
	switch s {
	case NoKey:
		return "No API key: add one in Settings"
	case Paused:
		return "Paused: every token is refused"
	case CapReached:
		return "Cap reached: requests refused until tomorrow"
	case Warning:
		return fmt.Sprintf("Past %s of today's cap", percent(passed(st, warnAt)))
	}
	return "Under budget"
}

func details(st control.Status) string {
	parts := []string{fmt.Sprintf("%s reserved in flight", st.Reserved), fmt.Sprintf("%s left", st.Remaining)}
	switch st.Requests {
	case 1:
		parts = append(parts, "1 request")
	default:
		parts = append(parts, fmt.Sprintf("%d requests", st.Requests))
	}
	return strings.Join(parts, " · ")
}

func sharesOf(ss []budget.Share, total money.USD, empty string) []Share {
	var top money.USD
	for _, s := range ss {
		top = max(top, s.Spent)
	}
	out := make([]Share, 0, len(ss))
	for _, s := range ss {
		sh := Share{Name: s.Name, Amount: s.Spent.String(), Percent: "0%"}
		if sh.Name == "" {
			sh.Name = empty
		}
		if total > 0 {
			sh.Percent = percent(float64(s.Spent) / float64(total))
		}
		if top > 0 {
			sh.Frac = float64(s.Spent) / float64(top)
		}
		out = append(out, sh)
	}
	return out
}

// fillNow says what is costing money right now and when the cap will be hit
// at that pace.
func (d *Dashboard) fillNow(ctx context.Context, db *ledger.DB, st control.Status, now time.Time, window time.Duration) error {
	mins := int(window.Round(time.Minute) / time.Minute)
	spenders, err := db.SpendSince(ctx, now.Add(-window), 3)
	if err != nil {
		d.Now = "Could not read the last minutes of spend."
		return err
	}
	var total money.USD
	for _, s := range spenders {
		total += s.Spent
		d.NowTop = append(d.NowTop, Spender{Script: scriptName(s.Label), Model: s.Model, Endpoint: s.Endpoint, Amount: s.Spent.String(), Requests: s.Requests})
	}
	if len(spenders) == 0 || total == 0 {
		d.Now = fmt.Sprintf("Nothing spent in the last %d minutes.", mins)
		return nil
	}
	top := spenders[0]
	what := top.Model
	if what == "" {
		what = top.Endpoint
	}
	d.Now = fmt.Sprintf("Costing you now: %s on %s, %s in the last %d minutes (%s)", scriptName(top.Label), what, top.Spent, mins, plural(top.Requests, "request"))
	if st.Paused || st.CapReached || st.Remaining <= 0 {
		return nil
	}
	// At the pace of the window, how long until the cap?
	perMinute := float64(total) / window.Minutes()
	if perMinute > 0 {
		left := time.Duration(float64(st.Remaining) / perMinute * float64(time.Minute)).Round(time.Minute)
		if left < 24*time.Hour {
			d.Pace = fmt.Sprintf("At this pace (%s an hour) the cap is reached in %s.", money.USD(perMinute*60), human(left))
		}
	}
	return nil
}

func plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// human formats a duration of minutes or hours for people.
func human(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return plural(int64(d/time.Minute), "minute")
	}
	h, m := int64(d/time.Hour), int64(d%time.Hour/time.Minute)
	if m == 0 {
		return plural(h, "hour")
	}
	return fmt.Sprintf("%dh%02dm", h, m)
}

func (d *Dashboard) fillRecent(ctx context.Context, db *ledger.DB, loc *time.Location, now time.Time, n int) error {
	es, err := db.Recent(ctx, n)
	if err != nil {
		return err
	}
	for _, e := range es {
		r := Row{Time: stamp(e.Start, loc, now), Script: scriptName(e.Label), Endpoint: e.Endpoint, Model: e.Model, Cost: e.Charged().String(), Refused: e.Status >= 400}
		switch {
		case e.State == ledger.Reserved:
			r.How = "in flight"
		case e.State == ledger.Recovered:
			r.How = "recovered"
		case e.Exact:
			r.How = "exact"
		default:
			r.How = "estimated"
		}
		if e.Rehearsed {
			r.How += ", rehearsal"
		}
		d.Recent = append(d.Recent, r)
	}
	return nil
}

func (d *Dashboard) fillEvents(ctx context.Context, db *ledger.DB, loc *time.Location, now time.Time, n int) error {
	es, err := db.Events(ctx, n)
	if err != nil {
		return err
	}
	for _, e := range es {
		msg := e.Message
		if e.Label != "" {
			msg = scriptName(e.Label) + ": " + msg
		}
		d.Events = append(d.Events, EventRow{
			Time: stamp(e.At, loc, now), Kind: strings.ReplaceAll(e.Kind, "_", " "), Message: msg,
			Alarm: e.Kind == "cap_reached" || e.Kind == "paused",
		})
	}
	return nil
}

// stamp is a time of today as 15:04:05, of another day as Jan 2 15:04.
func stamp(t time.Time, loc *time.Location, now time.Time) string {
	t, now = t.In(loc), now.In(loc)
	if t.Format(time.DateOnly) == now.Format(time.DateOnly) {
		return t.Format(time.TimeOnly)
	}
	return t.Format("Jan 2 15:04")
}
