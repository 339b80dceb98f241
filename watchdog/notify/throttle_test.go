package notify_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/notify"
)

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2025, 4, 23, 14, 0, 0, 0, time.UTC)}
}

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

func note(kind, label, msg string) notify.Notification {
	return notify.Notification{Kind: kind, Label: label, Title: "keycap", Message: msg}
}

func messages(ns []notify.Notification) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Message)
	}
	return out
}

func TestThrottle(t *testing.T) {
	type step struct {
		after time.Duration // clock advance before this step
		n     notify.Notification
		flush bool
	}
	tests := []struct {
		name  string
		steps []step
		want  []string
	}{
		{
			name: "same kind and label folded within a minute",
			steps: []step{
				{0, note("loop_warning", "day5.py", "a"), false},
				{10 * time.Second, note("loop_warning", "day5.py", "b"), false},
				{20 * time.Second, note("loop_warning", "day5.py", "c"), false},
				{29 * time.Second, note("loop_warning", "day5.py", "d"), false},
			},
			want: []string{"a"},
		},
		{
			name: "count shown in the next one delivered",
			steps: []step{
				{0, note("loop_warning", "day5.py", "a"), false},
				{time.Second, note("loop_warning", "day5.py", "b"), false},
				{time.Second, note("loop_warning", "day5.py", "c"), false},
				{time.Second, note("loop_warning", "day5.py", "d"), false},
				{time.Second, note("loop_warning", "day5.py", "e"), false},
				{time.Minute, note("loop_warning", "day5.py", "f"), false},
				{time.Minute, note("loop_warning", "day5.py", "g"), false},
			},
			want: []string{"a", "f (and 4 more like this)", "g"},
		},
		{
			name: "exactly one interval later is delivered",
			steps: []step{
				{0, note("threshold", "", "a"), false},
				{time.Minute - time.Nanosecond, note("threshold", "", "b"), false},
				{time.Nanosecond, note("threshold", "", "c"), false},
			},
			want: []string{"a", "c (and 1 more like this)"},
		},
		{
			name: "other label or other kind not folded",
			steps: []step{
				{0, note("loop_warning", "day5.py", "a"), false},
				{0, note("loop_warning", "airline.py", "b"), false},
				{0, note("retry_storm", "day5.py", "c"), false},
			},
			want: []string{"a", "b", "c"},
		},
		{
			name: "flush tells a burst that stopped",
			steps: []step{
				{0, note("loop_warning", "day5.py", "a"), false},
				{time.Second, note("loop_warning", "day5.py", "b"), false},
				{time.Second, note("loop_warning", "day5.py", "c"), false},
				{time.Second, note("loop_warning", "day5.py", "d"), false},
				{30 * time.Second, notify.Notification{}, true}, // too early
				{30 * time.Second, notify.Notification{}, true},
				{time.Second, note("loop_warning", "day5.py", "e"), false},
				{2 * time.Minute, notify.Notification{}, true},
				{time.Second, note("loop_warning", "day5.py", "f"), false},
			},
			want: []string{"a", "d (and 2 more like this)", "e"},
		},
		{
			name: "flush with a single folded one shows it alone",
			steps: []step{
				{0, note("token_denied", "x", "a"), false},
				{time.Second, note("token_denied", "x", "b"), false},
				{time.Minute, notify.Notification{}, true},
			},
			want: []string{"a", "b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			rec := &notify.Recorder{}
			th := notify.NewThrottle(rec, time.Minute)
			th.Now = clock.Now
			for i, s := range tt.steps {
				clock.Add(s.after)
				var err error
				if s.flush {
					err = th.Flush()
				} else {
					err = th.Notify(s.n)
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			got, want := messages(rec.Notifications()), tt.want
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("delivered %q, want %q", got, want)
			}
		})
	}
}

func TestThrottleCriticalNotFoldedIntoOrdinary(t *testing.T) {
	clock := newClock()
	rec := &notify.Recorder{}
	th := notify.NewThrottle(rec, time.Minute)
	th.Now = clock.Now
	must := func(n notify.Notification) {
		t.Helper()
		if err := th.Notify(n); err != nil {
			t.Fatal(err)
		}
	}
	must(note("threshold", "", "80%"))
	clock.Add(5 * time.Second)
	crit := note("threshold", "", "100%")
	crit.Critical = true
	must(crit)
	clock.Add(5 * time.Second)
	must(crit) // a second critical one within the minute is folded
	got := rec.Notifications()
	if len(got) != 2 || got[1].Message != "100%" || !got[1].Critical {
		t.Fatalf("delivered %+v, want 80%% then the critical 100%%", got)
	}
}

func TestThrottlePending(t *testing.T) {
	clock := newClock()
	th := notify.NewThrottle(&notify.Recorder{}, time.Minute)
	th.Now = clock.Now
	for _, m := range []string{"a", "b", "c"} {
		_ = th.Notify(note("retry_storm", "day5.py", m))
	}
	_ = th.Notify(note("loop_warning", "x", "only"))
	p := th.Pending()
	if len(p) != 1 {
		t.Fatalf("Pending = %+v, want one entry", p)
	}
	if got := p[0]; got.Kind != "retry_storm" || got.Label != "day5.py" || got.Count != 2 || got.Latest.Message != "c" || !got.Sent.Equal(clock.Now()) {
		t.Fatalf("Pending = %+v, want retry_storm/day5.py folded 2, latest c", got)
	}
}

func TestThrottleReturnsDeliveryError(t *testing.T) {
	boom := errors.New("no service")
	th := notify.NewThrottle(&notify.Recorder{Err: boom}, time.Minute)
	if err := th.Notify(note("k", "l", "m")); !errors.Is(err, boom) {
		t.Fatalf("Notify = %v, want %v", err, boom)
	}
	// Folded ones are not errors.
	if err := th.Notify(note("k", "l", "m")); err != nil {
		t.Fatalf("folded Notify = %v, want nil", err)
	}
}

// TestThrottleMemoryBounded feeds many labels and checks that what the
// throttle remembers stays bounded.
func TestThrottleMemoryBounded(t *testing.T) {
	clock := newClock()
	rec := &notify.Recorder{}
	th := notify.NewThrottle(rec, time.Minute)
	th.Now = clock.Now
	for i := range 5000 {
		_ = th.Notify(note("loop_warning", fmt.Sprint("script-", i), "m"))
		_ = th.Notify(note("loop_warning", fmt.Sprint("script-", i), "m")) // folded
		clock.Add(10 * time.Millisecond)
	}
	if got := len(th.Pending()); got > 1024 {
		t.Fatalf("throttle remembers %d folded kinds, want at most 1024", got)
	}
	clock.Add(time.Minute)
	_ = th.Flush()
	_ = th.Flush()
	if got := len(th.Pending()); got != 0 {
		t.Fatalf("after flushing, %d still pending", got)
	}
}

func TestThrottleConcurrent(t *testing.T) {
	rec := &notify.Recorder{}
	th := notify.NewThrottle(rec, time.Hour)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				_ = th.Notify(note("loop_warning", fmt.Sprint(i%2), "m"))
			}
		})
	}
	wg.Wait()
	if got := len(rec.Notifications()); got != 2 {
		t.Fatalf("delivered %d, want one per label (2)", got)
	}
	total := 0
	for _, p := range th.Pending() {
		total += p.Count
	}
	if total != 798 {
		t.Fatalf("folded %d, want 798", total)
	}
}
