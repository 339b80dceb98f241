package guard_test

import (
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/guard"
)

func TestRetryStorm(t *testing.T) {
	type step struct {
		after  time.Duration
		label  string
		status int
		n      int // times
		want   string
	}
	tests := []struct {
		name  string
		cfg   func(*guard.Config)
		steps []step
	}{
		{
			name: "10 in a minute, once per storm",
			steps: []step{
				{time.Second, "day5.py", 429, 9, ""},
				{time.Second, "day5.py", 429, 1, "retry_storm"},
				{time.Second, "day5.py", 429, 20, ""},
			},
		},
		{
			name: "a new storm after a quiet window",
			steps: []step{
				{time.Second, "day5.py", 500, 10, "retry_storm"},
				{time.Second, "day5.py", 503, 30, ""}, // the same storm
				{time.Minute, "day5.py", 503, 1, ""},  // after a quiet minute
				{time.Second, "day5.py", 503, 8, ""},
				{time.Second, "day5.py", 503, 1, "retry_storm"},
			},
		},
		{
			name: "spread over more than the window",
			steps: []step{
				{7 * time.Second, "day5.py", 429, 30, ""},
			},
		},
		{
			name: "other answers are not errors",
			steps: []step{
				{time.Second, "day5.py", 200, 20, ""},
				{time.Second, "day5.py", 400, 20, ""},
				{time.Second, "day5.py", 401, 20, ""},
			},
		},
		{
			name: "no answer counts",
			steps: []step{
				{time.Second, "day5.py", 0, 9, ""},
				{time.Second, "day5.py", 502, 1, "retry_storm"},
			},
		},
		{
			name: "scripts counted apart",
			steps: []step{
				{time.Second, "day5.py", 429, 9, ""},
				{time.Second, "airline.py", 429, 9, ""},
				{time.Second, "airline.py", 429, 1, "retry_storm"},
				{time.Second, "day5.py", 429, 1, "retry_storm"},
			},
		},
		{
			name:  "custom numbers",
			cfg:   func(c *guard.Config) { c.RetryStormAt, c.RetryWindow = 3, 10*time.Second },
			steps: []step{{6 * time.Second, "a", 429, 3, ""}, {time.Second, "a", 429, 1, "retry_storm"}},
		},
		{
			name:  "off",
			cfg:   func(c *guard.Config) { c.RetryStormAt = 0 },
			steps: []step{{time.Second, "a", 429, 50, ""}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := guard.DefaultConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			g, clock := mustGuard(t, cfg)
			for i, s := range tt.steps {
				got := ""
				for range s.n {
					clock.Add(s.after)
					if k := kinds(g.Upstream(s.label, s.status)); k != "" {
						got += k
					}
				}
				if got != s.want {
					t.Fatalf("step %d: %q, want %q", i, got, s.want)
				}
			}
		})
	}
}

func TestRetryStormMessage(t *testing.T) {
	g, clock := mustGuard(t, guard.DefaultConfig())
	var fs []guard.Finding
	for i := range 10 {
		clock.Add(5 * time.Second)
		status := 429
		switch {
		case i >= 9:
			status = 0
		case i >= 7:
			status = 503
		}
		fs = g.Upstream("day5.py", status)
	}
	if len(fs) != 1 {
		t.Fatalf("findings %+v, want one", fs)
	}
	f := fs[0]
	if f.Kind != guard.KindRetryStorm || f.Label != "day5.py" || f.Critical || f.Pause {
		t.Errorf("finding = %+v", f)
	}
	mustContain(t, "message", f.Message, `"day5.py" got 10 errors from the OpenAI API in 45 s`, "7× 429 rate limit, 2× 5xx server error, 1× no answer", "keeps retrying", "can still be billed", "keycap pause")
}
