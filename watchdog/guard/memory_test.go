package guard

import (
	"fmt"
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/problem"
)

// TestMemoryBounded sends a flood of distinct requests, spends and errors
// and checks that what the guard keeps stays bounded, and shrinks once the
// windows have passed.
func TestMemoryBounded(t *testing.T) {
	g, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 4, 23, 14, 0, 0, 0, time.UTC)
	g.Now = func() time.Time { return now }
	const n = 20000
	for i := range n {
		now = now.Add(10 * time.Millisecond)
		fp := fmt.Sprintf("%024x", i)
		for range 2 {
			_, _ = g.Check(Request{TokenID: "tok_a", Label: "day5.py", Fingerprint: fp, Estimate: money.Cent})
		}
		g.Spent(fmt.Sprint("script-", i), money.Cent/100, Account{Day: "2025-04-23", Spent: money.Dollar, Cap: 1000 * money.Dollar})
		g.Upstream(fmt.Sprint("script-", i), 429)
		g.Denied(fmt.Sprint("script-", i), errPaused, Account{Day: "2025-04-23"})
	}
	g.mu.Lock()
	loops, slots, storms, denied := len(g.loops), len(g.rate), len(g.storms), len(g.denied)
	hits := 0
	for _, l := range g.loops {
		hits += len(l.hits)
	}
	g.mu.Unlock()
	if loops > maxLoops || storms > maxStorms || denied > maxDenied || slots > rateSlots+1 || hits > loops*5 {
		t.Fatalf("after %d requests: %d loops (%d hits), %d rate slots, %d storms, %d denied", n, loops, hits, slots, storms, denied)
	}

	// A block is kept, the rest goes once the windows have passed.
	for range 5 {
		_, _ = g.Check(Request{TokenID: "tok_b", Fingerprint: "loop"})
	}
	now = now.Add(time.Hour)
	_, _ = g.Check(Request{TokenID: "tok_c", Fingerprint: "x"})
	g.Spent("x", 1, Account{Day: "2025-04-23", Cap: money.Dollar})
	g.mu.Lock()
	loops, slots, storms = len(g.loops), len(g.rate), len(g.storms)
	g.mu.Unlock()
	if loops != 2 || slots != 1 || storms != 0 {
		t.Fatalf("after an hour: %d loops, %d rate slots, %d storms; want 2 (the block and the new one), 1, 0", loops, slots, storms)
	}
}

var errPaused = problem.Errorf(problem.Paused, "keycap: all requests are paused")
