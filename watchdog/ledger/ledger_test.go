package ledger

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/meter"
	"github.com/keycap/keycap/watchdog/money"
)

func MustOpen(tb testing.TB) *DB {
	tb.Helper()
	db, err := Open(filepath.Join(tb.TempDir(), "ledger.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func TestReserveSettleTotals(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	a, err := db.Reserve(ctx, Entry{Start: t0, Day: "2026-12-04", TokenID: "t1", Label: "day5.py", Endpoint: "audio.speech", Model: "tts-1", Estimate: 61_440, Exact: true})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := db.Reserve(ctx, Entry{Start: t0, Day: "2026-12-04", TokenID: "t1", Label: "day5.py", Endpoint: "images.generations", Model: "dall-e-3", Estimate: 40_000})
	db.Reserve(ctx, Entry{Start: t0, Day: "2026-12-03", TokenID: "t2", Label: "other", Endpoint: "chat.completions", Model: "gpt-4o", Estimate: 5})
	db.Reserve(ctx, Entry{Start: t0, Day: "2026-12-04", TokenID: "t2", Label: "rehearse", Endpoint: "chat.completions", Model: "gpt-4o", Estimate: 999, Rehearsed: true})
	if err := db.Settle(ctx, a, t0.Add(time.Second), meter.Settlement{Cost: 61_440, Exact: true, Units: meter.Units{Characters: 4096}}, 200, "req_1"); err != nil {
		t.Fatal(err)
	}
	tot, err := db.DayTotals(ctx, "2026-12-04")
	if err != nil {
		t.Fatal(err)
	}
	// b is still reserved: it counts at its estimate.
	if got, want := tot.Spent, money.USD(101_440); got != want {
		t.Errorf("spent = %d, want %d", got, want)
	}
	if got, want := tot.ByModel["dall-e-3"], money.USD(40_000); got != want {
		t.Errorf("dall-e-3 = %d, want %d", got, want)
	}
	e, _ := db.Get(ctx, a)
	if e.State != Settled || e.Units.Characters != 4096 || e.RequestID != "req_1" || !e.Exact {
		t.Errorf("settled entry = %+v", e)
	}
	spend, _ := db.TokenSpend(ctx, []string{"t1", "t2"})
	if got, want := spend["t1"], money.USD(101_440); got != want {
		t.Errorf("token t1 spend = %d, want %d", got, want)
	}
	_ = b
}

func TestRestartWithUnsettledReservations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	db.Reserve(ctx, Entry{Start: t0, Day: "2026-12-04", TokenID: "t", Label: "l", Endpoint: "chat.completions", Model: "gpt-4o", Estimate: 163_900})
	db.Reserve(ctx, Entry{Start: t0, Day: "2026-12-04", TokenID: "t", Label: "l", Endpoint: "audio.speech", Model: "tts-1", Estimate: 61_440})
	db.Close() // as good as a crash: nothing was settled

	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n, total, err := db.Recover(ctx, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || total != 225_340 {
		t.Errorf("recovered %d totalling %d, want 2 totalling 225340", n, total)
	}
	rec, _ := db.Recent(ctx, 10)
	for _, e := range rec {
		if e.State != Recovered || e.Cost != e.Estimate || e.Exact || e.Note != RecoverNote {
			t.Errorf("recovered entry = %+v", e)
		}
	}
	if n, _, _ := db.Recover(ctx, t0); n != 0 {
		t.Errorf("second recovery found %d", n)
	}
	if err := db.Check(ctx); err != nil {
		t.Error(err)
	}
}

func TestTokensRevoke(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	for _, id := range []string{"a", "b", "c"} {
		if err := db.PutToken(ctx, Token{ID: id, Hash: []byte("h" + id), Label: id, Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := db.Revoke(ctx, t0, "b"); n != 1 {
		t.Errorf("revoked %d, want 1", n)
	}
	live, _ := db.LiveTokens(ctx, t0)
	if len(live) != 2 {
		t.Errorf("live = %d, want 2", len(live))
	}
	if live, _ := db.LiveTokens(ctx, t0.Add(2*time.Hour)); len(live) != 0 {
		t.Errorf("expired tokens still live: %d", len(live))
	}
	if n, _ := db.Revoke(ctx, t0); n != 2 {
		t.Errorf("revoke all = %d, want 2", n)
	}
}

func TestEventsAndState(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	db.AddEvent(ctx, Event{At: t0, Day: "2026-12-04", Kind: "cap_reached", Message: "m1", Amount: 5 * money.Dollar})
	db.AddEvent(ctx, Event{At: t0, Day: "2026-12-04", Kind: "paused", Message: "m2"})
	ev, _ := db.Events(ctx, 10)
	if len(ev) != 2 || ev[0].Kind != "paused" || ev[1].Amount != 5*money.Dollar {
		t.Errorf("events = %+v", ev)
	}
	if v, _ := db.State(ctx, "paused"); v != "" {
		t.Errorf("unset state = %q", v)
	}
	db.SetState(ctx, "paused", "user")
	db.SetState(ctx, "paused", "spend_rate")
	if v, _ := db.State(ctx, "paused"); v != "spend_rate" {
		t.Errorf("state = %q", v)
	}
}
