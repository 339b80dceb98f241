package viewmodel_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keycap/keycap/app/internal/sampledata"
	"github.com/keycap/keycap/app/viewmodel"
	"github.com/keycap/keycap/watchdog/budget"
	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/control"
	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/meter"
	"github.com/keycap/keycap/watchdog/money"
)

// now is the tests' clock: the afternoon of the incident.
var now = time.Date(2025, 4, 23, 14, 30, 0, 0, time.UTC)

// source is an engine as the view-model reads it: a status given by the
// test and a real ledger.
type source struct {
	st  control.Status
	cfg config.Config
	db  *ledger.DB
}

func (s *source) Status() control.Status { return s.st }
func (s *source) Config() config.Config  { return s.cfg }
func (s *source) Ledger() *ledger.DB     { return s.db }

// mustLedger opens an empty ledger that is closed when the test ends.
func mustLedger(tb testing.TB) *ledger.DB {
	tb.Helper()
	db, err := ledger.Open(filepath.Join(tb.TempDir(), "ledger.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func status(spent, reserved, limit money.USD) control.Status {
	return control.Status{
		Day: "2025-04-23", Timezone: "UTC", Cap: limit, Spent: spent, Reserved: reserved,
		Remaining: max(0, limit-spent-reserved), CapReached: spent+reserved >= limit, KeyPresent: true, Key: "sk-…wxyz",
	}
}

func TestStateAndIcon(t *testing.T) {
	warn := []float64{0.5, 0.8, 1}
	tests := []struct {
		name     string
		st       func() control.Status
		want     viewmodel.State
		wantIcon string
	}{
		{"nothing spent", func() control.Status { return status(0, 0, 5*money.Dollar) }, viewmodel.UnderBudget, "ok"},
		{"just under the first threshold", func() control.Status { return status(249*money.Cent, 0, 5*money.Dollar) }, viewmodel.UnderBudget, "ok"},
		{"past half", func() control.Status { return status(250*money.Cent, 0, 5*money.Dollar) }, viewmodel.Warning, "warn"},
		{"reservations count", func() control.Status { return status(2*money.Dollar, 50*money.Cent, 5*money.Dollar) }, viewmodel.Warning, "warn"},
		{"cap reached", func() control.Status { return status(5*money.Dollar, 0, 5*money.Dollar) }, viewmodel.CapReached, "cap"},
		{"cap of zero", func() control.Status { return status(0, 0, 0) }, viewmodel.CapReached, "cap"},
		{"paused beats cap", func() control.Status {
			s := status(5*money.Dollar, 0, 5*money.Dollar)
			s.Paused = true
			return s
		}, viewmodel.Paused, "paused"},
		{"no key beats everything", func() control.Status {
			s := status(5*money.Dollar, 0, 5*money.Dollar)
			s.Paused, s.KeyPresent = true, false
			return s
		}, viewmodel.NoKey, "nokey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := viewmodel.StateOf(tt.st(), warn)
			if got != tt.want {
				t.Fatalf("state = %v, want %v", got, tt.want)
			}
			if got, want := got.Icon(), tt.wantIcon; got != want {
				t.Fatalf("icon = %q, want %q", got, want)
			}
		})
	}
}

func TestNoWarningThresholdsMeansNoWarning(t *testing.T) {
	if got, want := viewmodel.StateOf(status(4*money.Dollar, 0, 5*money.Dollar), nil), viewmodel.UnderBudget; got != want {
		t.Fatalf("state = %v, want %v", got, want)
	}
}

func TestTrayLabels(t *testing.T) {
	st := status(123*money.Cent, 40*money.Cent, 5*money.Dollar)
	st.ByLabel = []budget.Share{{Name: "chatlog.py", Spent: 80 * money.Cent}, {Name: "airline.py", Spent: 30 * money.Cent}, {Name: "", Spent: 13 * money.Cent}}
	tests := []struct {
		name       string
		change     func(*control.Status)
		wantAlert  string
		wantPause  string
		wantTop    []string
		wantSpend  string
		wantReserv string
	}{
		{"running", func(*control.Status) {}, "", "Pause all", []string{"chatlog.py: $0.80", "airline.py: $0.30"}, "Today: $1.23 of $5.00", "Reserved right now: $0.40"},
		{"paused", func(s *control.Status) { s.Paused = true }, "Paused: every token is refused", "Resume", []string{"chatlog.py: $0.80", "airline.py: $0.30"}, "Today: $1.23 of $5.00", "Reserved right now: $0.40"},
		{"no key", func(s *control.Status) { s.KeyPresent, s.ByLabel = false, nil }, "No API key: add one in Settings…", "Pause all", nil, "Today: $1.23 of $5.00", "Reserved right now: $0.40"},
		{"cap reached", func(s *control.Status) { s.Spent, s.CapReached = 5*money.Dollar, true }, "Cap reached: requests refused until tomorrow", "Pause all", []string{"chatlog.py: $0.80", "airline.py: $0.30"}, "Today: $5.00 of $5.00", "Reserved right now: $0.40"},
		{"unlabelled script", func(s *control.Status) { s.ByLabel = s.ByLabel[2:] }, "", "Pause all", []string{"(no label): $0.13"}, "Today: $1.23 of $5.00", "Reserved right now: $0.40"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := st
			tt.change(&s)
			got := viewmodel.TrayOf(s, []float64{0.5, 0.8, 1})
			if got.Alert != tt.wantAlert {
				t.Errorf("alert = %q, want %q", got.Alert, tt.wantAlert)
			}
			if got.PauseLabel != tt.wantPause {
				t.Errorf("pause label = %q, want %q", got.PauseLabel, tt.wantPause)
			}
			if !slices.Equal(got.Top, tt.wantTop) {
				t.Errorf("top = %q, want %q", got.Top, tt.wantTop)
			}
			if got.Spend != tt.wantSpend {
				t.Errorf("spend = %q, want %q", got.Spend, tt.wantSpend)
			}
			if got.Reserved != tt.wantReserv {
				t.Errorf("reserved = %q, want %q", got.Reserved, tt.wantReserv)
			}
		})
	}
}

// mustWrite writes one settled request.
func mustWrite(tb testing.TB, w sampledata.Writer, at time.Time, label, endpoint, model string, cost money.USD) {
	tb.Helper()
	if err := w.Request(context.Background(), at, label, endpoint, model, cost, true); err != nil {
		tb.Fatal(err)
	}
}

func TestDashboardFiguresAndCharts(t *testing.T) {
	db := mustLedger(t)
	w := sampledata.Writer{DB: db, Loc: time.UTC}
	day := time.Date(2025, 4, 23, 0, 0, 0, 0, time.UTC)
	mustWrite(t, w, day.Add(9*time.Hour+5*time.Minute), "day5.ipynb", string(meter.Chat), "gpt-4o-mini", 10*money.Cent)
	mustWrite(t, w, day.Add(12*time.Hour), "airline.py", string(meter.ImageGenerate), "dall-e-3", 40*money.Cent)
	mustWrite(t, w, now.Add(-10*time.Minute), "chatlog.py", string(meter.Speech), "tts-1", 60*money.Cent)
	mustWrite(t, w, now.Add(-5*time.Minute), "chatlog.py", string(meter.Speech), "tts-1", 60*money.Cent)
	mustWrite(t, w, day.AddDate(0, 0, -1).Add(15*time.Hour), "airline.py", string(meter.ImageGenerate), "dall-e-3", 7*money.Dollar)
	mustWrite(t, w, day.AddDate(0, 0, -40), "old.py", string(meter.Chat), "gpt-4o", money.Dollar) // outside the 30 days
	if err := w.Event(context.Background(), day.Add(-9*time.Hour), "cap_reached", "airline.py", "daily cap of $5.00 reached", 5*money.Dollar); err != nil {
		t.Fatal(err)
	}

	st := status(170*money.Cent, 0, 5*money.Dollar)
	st.ByModel = []budget.Share{{Name: "tts-1", Spent: 120 * money.Cent}, {Name: "dall-e-3", Spent: 40 * money.Cent}, {Name: "gpt-4o-mini", Spent: 10 * money.Cent}}
	st.Requests = 4
	cfg := config.Default()
	v := viewmodel.Build(context.Background(), &source{st: st, cfg: cfg, db: db}, now, viewmodel.Options{CapIsDefault: true})
	d := v.Dashboard

	for _, c := range []struct{ name, got, want string }{
		{"spent", d.Spent, "$1.70"},
		{"of cap", d.OfCap, "of $5.00 today"},
		{"headline", d.Headline, "Under budget"},
		{"details", d.Details, "$0.00 reserved in flight · $3.30 left · 4 requests"},
		{"now", d.Now, "Costing you now: chatlog.py on tts-1, $1.20 in the last 15 minutes (2 requests)"},
		{"pace", d.Pace, "At this pace ($4.80 an hour) the cap is reached in 41 minutes."},
		{"key", d.KeyNote, "API key sk-…wxyz"},
		{"hours summary", d.Hours.Summary, "$1.70 so far today; busiest hour 14:00 ($1.20)"},
		{"days summary", d.Days.Summary, "$8.70 in 30 days, $0.29 a day on average; 1 day above today's cap"},
		{"hours top", d.Hours.Top, "$6.00"},
		{"days top", d.Days.Top, "$8.00"},
		{"cap label", d.Days.CapLabel, "cap $5.00"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if !strings.Contains(d.CapNote, "$5.00, the default") {
		t.Errorf("cap note = %q, want it to say the $5.00 cap is the default", d.CapNote)
	}
	if d.Problem != "" {
		t.Errorf("problem = %q, want none", d.Problem)
	}

	// Today by hour: 24 bars, spend where it was, the running total
	// drawn up to now, the current hour marked.
	if got, want := len(d.Hours.Bars), 24; got != want {
		t.Fatalf("hour bars = %d, want %d", got, want)
	}
	for h, want := range map[int]money.USD{9: 10 * money.Cent, 12: 40 * money.Cent, 14: 120 * money.Cent, 13: 0} {
		if got := d.Hours.Bars[h].Value; got != want {
			t.Errorf("hour %d = %v, want %v", h, got, want)
		}
	}
	if got, want := len(d.Hours.Line), 15; got != want {
		t.Errorf("running total points = %d, want %d (00:00 to 14:00)", got, want)
	}
	if got, want := d.Hours.Line[14], 1.70/6; !near(got, want) {
		t.Errorf("running total at 14:00 = %v, want %v", got, want)
	}
	if got, want := d.Hours.CapFrac, 5.0/6; !near(got, want) {
		t.Errorf("cap line = %v, want %v", got, want)
	}
	if !d.Hours.Bars[14].Current || d.Hours.Bars[13].Current {
		t.Errorf("current hour = 13:%v 14:%v, want only 14:00", d.Hours.Bars[13].Current, d.Hours.Bars[14].Current)
	}
	if got, want := d.Hours.Bars[12].Label, "12"; got != want {
		t.Errorf("tick at 12:00 = %q, want %q", got, want)
	}

	// Last 30 days: today last, yesterday over the cap, old spend left out.
	if got, want := len(d.Days.Bars), viewmodel.Days; got != want {
		t.Fatalf("day bars = %d, want %d", got, want)
	}
	last, yesterday := d.Days.Bars[29], d.Days.Bars[28]
	if got, want := last.Value, 170*money.Cent; got != want || !last.Current || last.Label != "Apr 23" {
		t.Errorf("today = %v current=%v label=%q, want %v, current, Apr 23", got, last.Current, last.Label, want)
	}
	if got, want := yesterday.Value, 7*money.Dollar; got != want || !yesterday.Over {
		t.Errorf("yesterday = %v over=%v, want %v over the cap", got, yesterday.Over, want)
	}

	// By model and script, recent requests, events.
	if got, want := d.ByModel[0], (viewmodel.Share{Name: "tts-1", Amount: "$1.20", Percent: "70%", Frac: 1}); got != want {
		t.Errorf("top model = %+v, want %+v", got, want)
	}
	if got, want := d.ByModel[2].Percent, "5%"; got != want {
		t.Errorf("gpt-4o-mini percent = %q, want %q", got, want)
	}
	if got, want := len(d.Recent), 6; got != want {
		t.Fatalf("recent rows = %d, want %d", got, want)
	}
	if got, want := d.Recent[0], (viewmodel.Row{Time: "Mar 14 00:00", Script: "old.py", Endpoint: "chat.completions", Model: "gpt-4o", Cost: "$1.00", How: "exact"}); got != want {
		t.Errorf("newest row = %+v, want %+v", got, want)
	}
	if got, want := len(d.Events), 1; got != want {
		t.Fatalf("events = %d, want %d", got, want)
	}
	if got, want := d.Events[0], (viewmodel.EventRow{Time: "Apr 22 15:00", Kind: "cap reached", Message: "airline.py: daily cap of $5.00 reached", Alarm: true}); got != want {
		t.Errorf("event = %+v, want %+v", got, want)
	}
}

func TestNothingSpentYet(t *testing.T) {
	v := viewmodel.Build(context.Background(), &source{st: status(0, 0, 5*money.Dollar), cfg: config.Default(), db: mustLedger(t)}, now, viewmodel.Options{})
	d := v.Dashboard
	for _, c := range []struct{ name, got, want string }{
		{"now", d.Now, "Nothing spent in the last 15 minutes."},
		{"pace", d.Pace, ""},
		{"hours", d.Hours.Summary, "Nothing spent today yet."},
		{"hours top", d.Hours.Top, "$6.00"},
		{"cap note", d.CapNote, ""},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if len(d.ByModel) != 0 || len(d.Recent) != 0 || len(d.Events) != 0 {
		t.Errorf("by model %v, recent %v, events %v: want all empty", d.ByModel, d.Recent, d.Events)
	}
}

func TestClosedLedgerStillShowsTheFiguresInMemory(t *testing.T) {
	db := mustLedger(t)
	db.Close()
	v := viewmodel.Build(context.Background(), &source{st: status(2*money.Dollar, 0, 5*money.Dollar), cfg: config.Default(), db: db}, now, viewmodel.Options{})
	if got, want := v.Tray.Spend, "Today: $2.00 of $5.00"; got != want {
		t.Errorf("tray = %q, want %q", got, want)
	}
	if !strings.HasPrefix(v.Dashboard.Problem, "Could not read the ledger") {
		t.Errorf("problem = %q, want it to say the ledger could not be read", v.Dashboard.Problem)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
