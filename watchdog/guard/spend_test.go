package guard_test

import (
	"errors"
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/guard"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/problem"
)

const today, tomorrow = "2025-04-23", "2025-04-24"

func TestSpendRateBreaker(t *testing.T) {
	type spend struct {
		after time.Duration
		label string
		cost  string
		want  string // finding kinds
	}
	tests := []struct {
		name  string
		cfg   func(*guard.Config)
		cap   string
		steps []spend
	}{
		{
			name: "20% of the cap within 5 min trips",
			cap:  "10",
			steps: []spend{
				{0, "day5.py", "0.50", ""},
				{time.Minute, "day5.py", "0.50", ""},
				{time.Minute, "day5.py", "0.50", ""},
				{time.Minute, "day5.py", "0.50", ""}, // $2.00: at the limit, not over
				{time.Minute, "day5.py", "0.01", "spend_rate"},
			},
		},
		{
			name: "trailing window forgets old spend",
			cap:  "10",
			steps: []spend{
				{0, "day5.py", "1.50", ""},
				{5 * time.Minute, "day5.py", "0.60", ""}, // the $1.50 just left the window
				{4*time.Minute + 59*time.Second, "day5.py", "1.41", "spend_rate"},
			},
		},
		{
			name: "slow spend never trips",
			cap:  "10",
			steps: []spend{
				{0, "a", "1.00", ""}, {3 * time.Minute, "a", "1.00", ""}, {3 * time.Minute, "a", "1.00", ""},
				{3 * time.Minute, "a", "1.00", ""}, {3 * time.Minute, "a", "1.00", ""}, {3 * time.Minute, "a", "1.00", ""},
			},
		},
		{
			name: "dollars a minute, lower than the fraction",
			cfg:  func(c *guard.Config) { c.RateUSDPerMin = 0.10 }, // $0.50 in 5 min; 20% of $100 is $20
			cap:  "100",
			steps: []spend{
				{0, "a", "0.30", ""},
				{time.Minute, "a", "0.20", ""},
				{time.Minute, "a", "0.01", "spend_rate"},
			},
		},
		{
			name: "fraction, lower than dollars a minute",
			cfg:  func(c *guard.Config) { c.RateUSDPerMin = 0.10 }, // $0.50 in 5 min; 20% of $1 is $0.20
			cap:  "1",
			steps: []spend{
				{0, "a", "0.20", ""},
				{time.Minute, "a", "0.01", "spend_rate"},
			},
		},
		{
			name: "dollars a minute alone",
			cfg:  func(c *guard.Config) { c.RateFraction, c.RateUSDPerMin = 0, 1 },
			cap:  "1000",
			steps: []spend{
				{0, "a", "4.00", ""},
				{time.Minute, "a", "1.01", "spend_rate"},
			},
		},
		{
			name: "fresh window after tripping",
			cap:  "10",
			steps: []spend{
				{0, "a", "2.01", "spend_rate"},
				{time.Second, "a", "1.00", ""},
				{time.Second, "a", "1.00", ""},
				{time.Second, "a", "0.01", "spend_rate"},
			},
		},
		{
			name:  "breaker off",
			cfg:   func(c *guard.Config) { c.RateFraction, c.RateUSDPerMin = 0, 0 },
			cap:   "10",
			steps: []spend{{0, "a", "5", ""}, {time.Second, "a", "4", ""}},
		},
		{
			name:  "zero cost",
			cap:   "10",
			steps: []spend{{0, "a", "0", ""}, {0, "a", "0", ""}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := guard.DefaultConfig()
			cfg.Thresholds = nil
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			g, clock := mustGuard(t, cfg)
			var total money.USD
			for i, s := range tt.steps {
				clock.Add(s.after)
				total += usd(s.cost)
				fs := g.Spent(s.label, usd(s.cost), guard.Account{Day: today, Spent: total, Cap: usd(tt.cap)})
				if got := kinds(fs); got != s.want {
					t.Fatalf("step %d: findings %q, want %q (%+v)", i, got, s.want, fs)
				}
				for _, f := range fs {
					if !f.Pause || !f.Critical {
						t.Errorf("spend_rate finding %+v: want Pause and Critical", f)
					}
				}
			}
		})
	}
}

func TestSpendRateMessage(t *testing.T) {
	g, clock := mustGuard(t, guard.DefaultConfig())
	acct := guard.Account{Day: today, Cap: usd("10")}
	spend := func(label, cost string) []guard.Finding {
		acct.Spent += usd(cost)
		return g.Spent(label, usd(cost), acct)
	}
	spend("airline.py", "0.08")
	clock.Add(30 * time.Second)
	spend("day5.py", "1.20")
	clock.Add(30 * time.Second)
	fs := spend("airline.py", "0.80")
	if len(fs) != 1 {
		t.Fatalf("findings %+v, want the breaker", fs)
	}
	f := fs[0]
	if f.Label != "day5.py" || f.Amount != usd("2.08") || !f.At.Equal(start.Add(time.Minute)) {
		t.Errorf("finding = %+v, want label day5.py (the biggest spender), amount $2.08", f)
	}
	mustContain(t, "message", f.Message, "$2.08 was spent in the last 5 min", "20% of the $10.00 daily cap", `most by "day5.py" ($1.20)`, "paused every token", "keycap resume")
	mustContain(t, "title", f.Title, "paused")

	cfg := guard.DefaultConfig()
	cfg.RateUSDPerMin = 0.1
	if err := g.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	acct.Cap = usd("1000")
	fs = spend("day5.py", "0.51")
	if len(fs) != 1 {
		t.Fatalf("findings %+v, want the breaker", fs)
	}
	mustContain(t, "message", fs[0].Message, "over the limit of $0.10 a minute")
}

func TestThresholds(t *testing.T) {
	type step struct {
		day   string
		spent string
		cap   string
		want  string // "50%", "80%", "100%!" (critical) or ""
	}
	tests := []struct {
		name       string
		thresholds []float64
		prime      *guard.Account
		steps      []step
	}{
		{
			name: "each once per day",
			steps: []step{
				{today, "4.99", "10", ""}, {today, "5.00", "10", "50%"}, {today, "6", "10", ""}, {today, "5.5", "10", ""},
				{today, "8", "10", "80%"}, {today, "9.99", "10", ""}, {today, "10", "10", "100%!"}, {today, "10.50", "10", ""},
			},
		},
		{
			name:  "again the next day",
			steps: []step{{today, "5", "10", "50%"}, {today, "8", "10", "80%"}, {tomorrow, "0.10", "10", ""}, {tomorrow, "5", "10", "50%"}},
		},
		{
			name:  "a jump notifies only the highest",
			steps: []step{{today, "8.5", "10", "80%"}, {today, "9", "10", ""}, {today, "10", "10", "100%!"}},
		},
		{
			name:  "primed at start-up",
			prime: &guard.Account{Day: today, Spent: usd("6"), Cap: usd("10")},
			steps: []step{{today, "6.5", "10", ""}, {today, "8", "10", "80%"}},
		},
		{
			name: "cap raised during the day",
			steps: []step{
				{today, "10", "10", "100%!"},
				// Already past 50% of the new cap: not news.
				{today, "12", "20", ""},
				{today, "16", "20", "80%"},
				{today, "20", "20", "100%!"},
			},
		},
		{
			name:       "configured list",
			thresholds: []float64{0.9, 0.25, 0.25},
			steps:      []step{{today, "2.5", "10", "25%"}, {today, "8", "10", ""}, {today, "10", "10", "90%"}},
		},
		{
			name:       "none",
			thresholds: []float64{},
			steps:      []step{{today, "10", "10", ""}},
		},
		{
			name:  "no cap",
			steps: []step{{today, "10", "0", ""}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := guard.DefaultConfig()
			cfg.RateFraction = 0
			if tt.thresholds != nil {
				cfg.Thresholds = tt.thresholds
			}
			g, _ := mustGuard(t, cfg)
			if tt.prime != nil {
				g.Prime(*tt.prime)
			}
			var last money.USD
			lastDay := ""
			for i, s := range tt.steps {
				if s.day != lastDay {
					last, lastDay = 0, s.day
				}
				cost := usd(s.spent) - last
				last = usd(s.spent)
				fs := g.Spent("day5.py", cost, guard.Account{Day: s.day, Spent: usd(s.spent), Cap: usd(s.cap)})
				got := ""
				if len(fs) > 1 {
					t.Fatalf("step %d: %d findings, want at most one", i, len(fs))
				}
				if len(fs) == 1 {
					f := fs[0]
					if f.Kind != guard.KindThreshold {
						t.Fatalf("step %d: kind %q", i, f.Kind)
					}
					got = f.Title[len("keycap: "):]
					switch {
					case f.Critical:
						got = "100%!"
					default:
						got = got[:len(got)-len(" of today's cap spent")]
					}
				}
				if got != s.want {
					t.Fatalf("step %d (%s of %s): got %q, want %q", i, s.spent, s.cap, got, s.want)
				}
			}
		})
	}
}

func TestThresholdMessages(t *testing.T) {
	cfg := guard.DefaultConfig()
	cfg.RateFraction = 0
	g, _ := mustGuard(t, cfg)
	fs := g.Spent("day5.py", usd("5"), guard.Account{Day: today, Spent: usd("5"), Cap: usd("10"), TopLabel: "airline.py", TopSpent: usd("3")})
	if len(fs) != 1 {
		t.Fatalf("findings %+v", fs)
	}
	mustContain(t, "50%", fs[0].Message, "$5.00 of today's $10.00 cap is spent, past 50%", `most by "airline.py" ($3.00)`, "keycap status")
	if fs[0].Label != "airline.py" || fs[0].Critical {
		t.Errorf("50%% finding = %+v", fs[0])
	}
	fs = g.Spent("day5.py", usd("5"), guard.Account{Day: today, Spent: usd("10"), Cap: usd("10")})
	if len(fs) != 1 || !fs[0].Critical {
		t.Fatalf("findings %+v, want a critical one", fs)
	}
	mustContain(t, "100%", fs[0].Message, "today's $10.00 cap is reached ($10.00 spent; last by \"day5.py\")", "refuses requests", "keycap cap <dollars>")
	mustContain(t, "100% title", fs[0].Title, "daily cap reached")
}

func TestDenied(t *testing.T) {
	capErr := problem.Errorf(problem.DailyCapReached, "keycap: daily cap reached")
	budgetErr := problem.Errorf(problem.TokenBudgetReached, "keycap: this token's budget is used up")
	pausedErr := problem.Errorf(problem.Paused, "keycap: all requests are paused (paused because spending was too fast). Resume with `keycap resume` or from the tray.")
	acct := guard.Account{Day: today, Spent: usd("9.97"), Cap: usd("10")}
	type step struct {
		label string
		err   error
		day   string
		want  string // kind, "" for none
	}
	tests := []struct {
		name       string
		thresholds []float64
		steps      []step
	}{
		{
			name: "cap refusal is the 100% crossing, then once per script",
			steps: []step{
				{"day5.py", capErr, today, "threshold"},
				{"day5.py", capErr, today, ""},
				{"airline.py", capErr, today, "token_denied"},
				{"airline.py", capErr, today, ""},
				{"day5.py", capErr, tomorrow, "threshold"},
				{"airline.py", capErr, tomorrow, "token_denied"},
			},
		},
		{
			name:       "no 100% threshold",
			thresholds: []float64{0.5},
			steps:      []step{{"day5.py", capErr, today, "token_denied"}, {"day5.py", capErr, today, ""}},
		},
		{
			name: "once per script and reason",
			steps: []step{
				{"day5.py", pausedErr, today, "token_denied"},
				{"day5.py", pausedErr, today, ""},
				{"day5.py", budgetErr, today, "token_denied"},
				{"day5.py", budgetErr, today, ""},
				{"airline.py", pausedErr, today, "token_denied"},
			},
		},
		{
			name: "other refusals are not told",
			steps: []step{
				{"day5.py", problem.Errorf(problem.InvalidToken, "bad"), today, ""},
				{"day5.py", problem.Errorf(guard.LoopBlocked, "loop"), today, ""},
				{"day5.py", errors.New("disk"), today, ""},
				{"day5.py", nil, today, ""},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := guard.DefaultConfig()
			if tt.thresholds != nil {
				cfg.Thresholds = tt.thresholds
			}
			g, _ := mustGuard(t, cfg)
			for i, s := range tt.steps {
				a := acct
				a.Day = s.day
				if got := kinds(g.Denied(s.label, s.err, a)); got != s.want {
					t.Fatalf("step %d: %q, want %q", i, got, s.want)
				}
			}
		})
	}
}

func TestDeniedMessages(t *testing.T) {
	g, _ := mustGuard(t, guard.DefaultConfig())
	acct := guard.Account{Day: today, Spent: usd("9.97"), Cap: usd("10")}
	fs := g.Denied("day5.py", problem.Errorf(problem.DailyCapReached, "x"), acct)
	if len(fs) != 1 || !fs[0].Critical || fs[0].Label != "day5.py" {
		t.Fatalf("findings %+v, want a critical threshold for day5.py", fs)
	}
	mustContain(t, "cap", fs[0].Message, "today's $10.00 cap is reached ($9.97 spent)", `refused a request from "day5.py"`)
	// The cap is past: spend reaching it later is not told again.
	if fs := g.Spent("x", usd("0.03"), guard.Account{Day: today, Spent: usd("10"), Cap: usd("10")}); len(fs) != 0 {
		t.Fatalf("Spent after the cap refusal = %+v, want nothing", fs)
	}
	tests := []struct {
		err  error
		want []string
	}{
		{problem.Errorf(problem.DailyCapReached, "x"), []string{`"airline.py" was refused: today's $10.00 cap is reached ($9.97 spent)`, "until tomorrow"}},
		{problem.Errorf(problem.TokenBudgetReached, "x"), []string{`"airline.py" was refused: its token's own budget is used up`, "keycap token --budget"}},
		{problem.Errorf(problem.Paused, "keycap: all requests are paused (paused by you). Resume with `keycap resume` or from the tray."),
			[]string{`"airline.py" was refused: all requests are paused (paused by you). Resume with ` + "`keycap resume`"}},
	}
	for _, tt := range tests {
		fs := g.Denied("airline.py", tt.err, acct)
		if len(fs) != 1 || fs[0].Kind != guard.KindTokenDenied || fs[0].Critical {
			t.Fatalf("Denied(%v) = %+v", tt.err, fs)
		}
		mustContain(t, problem.CodeOf(tt.err), fs[0].Message, tt.want...)
	}
}
