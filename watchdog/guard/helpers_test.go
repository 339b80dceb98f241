package guard_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/guard"
	"github.com/keycap/keycap/watchdog/money"
)

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

// start is the afternoon of the incident.
var start = time.Date(2025, 4, 23, 14, 0, 0, 0, time.UTC)

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// mustGuard returns a Guard with cfg on a clock set to start.
func mustGuard(tb testing.TB, cfg guard.Config) (*guard.Guard, *clock) {
	tb.Helper()
	g, err := guard.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	c := &clock{t: start}
	g.Now = c.Now
	return g, c
}

func usd(s string) money.USD {
	v, err := money.Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

// kinds lists the kinds of findings, for compact comparisons.
func kinds(fs []guard.Finding) string {
	var k []string
	for _, f := range fs {
		k = append(k, f.Kind)
	}
	return strings.Join(k, ",")
}

// mustContain fails unless s contains every part.
func mustContain(tb testing.TB, what, s string, parts ...string) {
	tb.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			tb.Errorf("%s = %q, want it to contain %q", what, s, p)
		}
	}
	if strings.ContainsAny(s, "\n\r") {
		tb.Errorf("%s = %q spans lines, want one line", what, s)
	}
}
