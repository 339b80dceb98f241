package budget

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/problem"
)

func TestConcurrentReservationsNeverOvershoot(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	b := New(1*money.Dollar, time.UTC, now)
	const price = 61_440 // one 4096-character tts-1 request
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				h, err := b.Reserve(now, "t", price)
				if err != nil {
					if problem.CodeOf(err) != problem.DailyCapReached {
						t.Errorf("err = %v", err)
					}
					refused.Add(1)
					continue
				}
				ok.Add(1)
				b.Settle(h, price, "tts-1", "loop")
			}
		}()
	}
	wg.Wait()
	if got, want := ok.Load(), int64(money.Dollar/price); got != want {
		t.Errorf("admitted %d, want %d", got, want)
	}
	s := b.Snapshot(now)
	if s.Spent > s.Cap || s.Reserved != 0 {
		t.Errorf("snapshot %v overshoots or leaks", s)
	}
}

func TestDayRolloverInNonUTCZone(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	// 14:59 UTC is 23:59 in Tokyo; a minute later it is tomorrow there.
	before := time.Date(2026, 12, 4, 14, 59, 0, 0, time.UTC)
	after := before.Add(2 * time.Minute)
	b := New(1*money.Dollar, tokyo, before)
	h, err := b.Reserve(before, "t", 90*money.Cent)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Reserve(before, "t", 20*money.Cent); problem.CodeOf(err) != problem.DailyCapReached {
		t.Fatalf("before midnight: err = %v, want cap reached", err)
	}
	if _, err := b.Reserve(after, "t", 20*money.Cent); err != nil {
		t.Fatalf("after midnight in Tokyo: %v", err)
	}
	b.Settle(h, 90*money.Cent, "m", "l") // yesterday's hold settles off today's figures
	s := b.Snapshot(after)
	if got, want := s.Day, "2026-12-05"; got != want {
		t.Errorf("day = %s, want %s", got, want)
	}
	if s.Spent != 0 || s.Reserved != 20*money.Cent {
		t.Errorf("today = %v, want 0 spent, $0.20 reserved", s)
	}
}

func TestPauseAndTokenBudget(t *testing.T) {
	now := time.Now()
	b := New(10*money.Dollar, time.UTC, now)
	b.Track("small", 50*money.Cent, 40*money.Cent)
	if _, err := b.Reserve(now, "small", 20*money.Cent); problem.CodeOf(err) != problem.TokenBudgetReached {
		t.Errorf("err = %v, want token budget reached", err)
	}
	if _, err := b.Reserve(now, "other", 20*money.Cent); err != nil {
		t.Errorf("untracked token refused: %v", err)
	}
	b.Pause("")
	if _, err := b.Reserve(now, "other", 1); problem.CodeOf(err) != problem.Paused {
		t.Errorf("paused: err = %v", err)
	}
	b.Resume()
	if _, err := b.Reserve(now, "other", 1); err != nil {
		t.Errorf("resumed: %v", err)
	}
}
