package viewmodel_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keycap/keycap/app/viewmodel"
	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/control"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/problem"
)

func TestSettingsOfDefaults(t *testing.T) {
	got := viewmodel.SettingsOf(config.Default())
	want := viewmodel.Settings{Cap: "5.00", WarnAt: "50, 80, 100", Timezone: "", Upstream: config.DefaultUpstream, TokenTTL: "1h"}
	if got != want {
		t.Fatalf("form = %+v, want %+v", got, want)
	}
}

func TestSettingsApply(t *testing.T) {
	good := viewmodel.SettingsOf(config.Default())
	tests := []struct {
		name    string
		change  func(*viewmodel.Settings)
		wantErr string
		check   func(t *testing.T, c config.Config)
	}{
		{"unchanged", func(*viewmodel.Settings) {}, "", func(t *testing.T, c config.Config) {
			if c.Cap() != 5*money.Dollar {
				t.Errorf("cap = %v, want $5.00", c.Cap())
			}
		}},
		{"new cap with a dollar sign", func(s *viewmodel.Settings) { s.Cap = " $12.50 " }, "", func(t *testing.T, c config.Config) {
			if got, want := c.Cap(), 1250*money.Cent; got != want {
				t.Errorf("cap = %v, want %v", got, want)
			}
		}},
		{"thresholds unsorted with percent signs", func(s *viewmodel.Settings) { s.WarnAt = "90%, 25 75" }, "", func(t *testing.T, c config.Config) {
			if got, want := c.WarnAt, []float64{0.25, 0.75, 0.9}; !slices.Equal(got, want) {
				t.Errorf("warn at = %v, want %v", got, want)
			}
		}},
		{"timezone and ttl", func(s *viewmodel.Settings) { s.Timezone, s.TokenTTL = "Asia/Tokyo", "30m" }, "", func(t *testing.T, c config.Config) {
			if c.Timezone != "Asia/Tokyo" || c.TokenTTL.Duration != 30*time.Minute {
				t.Errorf("timezone %q ttl %v, want Asia/Tokyo 30m", c.Timezone, c.TokenTTL)
			}
		}},
		{"cap not a number", func(s *viewmodel.Settings) { s.Cap = "five" }, "The daily cap must be an amount in dollars, like 5 or 12.50.", nil},
		{"cap negative", func(s *viewmodel.Settings) { s.Cap = "-3" }, "The daily cap must be an amount in dollars, like 5 or 12.50.", nil},
		{"cap huge", func(s *viewmodel.Settings) { s.Cap = "2000000" }, "The daily cap must be at most $1000000.", nil},
		{"threshold over 100", func(s *viewmodel.Settings) { s.WarnAt = "50, 150" }, `Warning thresholds are percentages of the cap between 1 and 100, like 50, 80, 100; "150" is not one.`, nil},
		{"unknown timezone", func(s *viewmodel.Settings) { s.Timezone = "Mars/Olympus" }, `"Mars/Olympus" is not a time zone keycap knows: use a name like Europe/Berlin or America/New_York, or leave it empty for the system's.`, nil},
		{"upstream not a URL", func(s *viewmodel.Settings) { s.Upstream = "api.openai.com" }, "The upstream must be a URL like https://api.openai.com/v1.", nil},
		{"ttl too long", func(s *viewmodel.Settings) { s.TokenTTL = "48h" }, "A token's lifetime is a duration like 1h or 30m, between 1s and 24h.", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := good
			tt.change(&f)
			c, err := f.Apply(config.Default())
			if got := viewmodel.Sentence(err); got != tt.wantErr {
				t.Fatalf("error = %q, want %q", got, tt.wantErr)
			}
			if err == nil {
				if c.Listen != config.DefaultListen {
					t.Errorf("listen = %q, want it kept", c.Listen)
				}
				tt.check(t, c)
			}
		})
	}
}

func TestSentence(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("the key is empty"), "The key is empty."},
		{errors.New("already a sentence."), "Already a sentence."},
		{problem.Errorf(problem.Paused, "keycap: keycap is paused (user), so no new tokens are issued"), "Keycap is paused (user), so no new tokens are issued."},
		{problem.Wrap(errors.New("disk /home/me full"), "cannot store the token"), "Cannot store the token."},
	}
	for _, tt := range tests {
		if got := viewmodel.Sentence(tt.err); got != tt.want {
			t.Errorf("Sentence(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Hour: "1h", 90 * time.Minute: "1h30m", 45 * time.Second: "45s", 24 * time.Hour: "24h", 15 * time.Minute: "15m"} {
		if got := viewmodel.ShortDuration(d); got != want {
			t.Errorf("ShortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// engine is a source that signals changes like the real engine.
type engine struct {
	source
	mu  sync.Mutex
	sub chan struct{}
}

func (e *engine) Status() control.Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st
}

func (e *engine) Subscribe() (<-chan struct{}, func()) { return e.sub, func() {} }

func (e *engine) spend(v money.USD) {
	e.mu.Lock()
	e.st.Spent += v
	e.mu.Unlock()
	select {
	case e.sub <- struct{}{}:
	default:
	}
}

func TestFeedRebuildsOnEveryChange(t *testing.T) {
	e := &engine{source: source{st: status(0, 0, 5*money.Dollar), cfg: config.Default(), db: mustLedger(t)}, sub: make(chan struct{}, 1)}
	// A tick far away: only changes may rebuild the view.
	f := &viewmodel.Feed{Engine: e, Now: func() time.Time { return now }, MinInterval: time.Millisecond, Tick: time.Hour}
	views := make(chan viewmodel.View, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx, func(v viewmodel.View) { views <- v })
	}()
	defer func() { cancel(); <-done }()
	next := func() viewmodel.View {
		select {
		case v := <-views:
			return v
		case <-time.After(30 * time.Second):
			t.Fatal("no view within 30s")
		}
		return viewmodel.View{}
	}
	if got, want := next().Tray.Spend, "Today: $0.00 of $5.00"; got != want {
		t.Fatalf("first view = %q, want %q", got, want)
	}
	for i, want := range []string{"Today: $1.00 of $5.00", "Today: $2.00 of $5.00"} {
		e.spend(money.Dollar)
		if got := next().Tray.Spend; got != want {
			t.Fatalf("view after change %d = %q, want %q", i+1, got, want)
		}
	}
}
