package notify_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/notify"
)

// blocking is a Notifier that waits until released.
type blocking struct {
	release chan struct{}
	rec     notify.Recorder
}

func (b *blocking) Notify(n notify.Notification) error {
	<-b.release
	return b.rec.Notify(n)
}

func TestQueueNeverBlocks(t *testing.T) {
	b := &blocking{release: make(chan struct{})}
	q := notify.NewQueue(b, 2)
	start := time.Now()
	var full int
	for range 10 {
		if err := q.Notify(note("k", "l", "m")); errors.Is(err, notify.ErrQueueFull) {
			full++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Notify took %v with a stuck service", d)
	}
	// One is being delivered, two wait, the rest are dropped.
	if full < 7 || q.Dropped() != full {
		t.Fatalf("dropped %d (Dropped() = %d), want at least 7", full, q.Dropped())
	}
	close(b.release)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := len(b.rec.Notifications()); got != 10-full {
		t.Fatalf("delivered %d, want %d", got, 10-full)
	}
	if err := q.Notify(note("k", "l", "m")); !errors.Is(err, notify.ErrClosed) {
		t.Fatalf("Notify after Close = %v, want ErrClosed", err)
	}
	if err := q.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestQueueCloseGivesUpWithContext(t *testing.T) {
	b := &blocking{release: make(chan struct{})}
	defer close(b.release)
	q := notify.NewQueue(b, 1)
	_ = q.Notify(note("k", "l", "m"))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := q.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want deadline exceeded", err)
	}
}

func TestQueueErr(t *testing.T) {
	boom := errors.New("no service")
	rec := &notify.Recorder{Err: boom}
	q := notify.NewQueue(rec, 4)
	_ = q.Notify(note("k", "l", "m"))
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := q.Err(); !errors.Is(err, boom) {
		t.Fatalf("Err = %v, want %v", err, boom)
	}
}

func TestRecorderReset(t *testing.T) {
	var r notify.Recorder
	_ = r.Notify(note("k", "l", "m"))
	if got := len(r.Notifications()); got != 1 {
		t.Fatalf("recorded %d, want 1", got)
	}
	r.Reset()
	if got := len(r.Notifications()); got != 0 {
		t.Fatalf("after Reset recorded %d, want 0", got)
	}
	if err := (notify.Discard{}).Notify(note("k", "l", "m")); err != nil {
		t.Fatal(err)
	}
}
