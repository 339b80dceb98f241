// Package sampledata fills a ledger with a month of made-up but plausible
// spend, the same every time for the same day: a learner's notebooks and
// scripts on gpt-4o-mini, gpt-4o, embeddings, a few DALL-E 3 images, one day
// that hit the cap, and today a TTS loop that is costing money right now.
// The UI's tests, the demo and the README's screenshot use it.
package sampledata

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/keycap/keycap/watchdog/budget"
	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/meter"
	"github.com/keycap/keycap/watchdog/money"
)

// request is one request to write.
type request struct {
	at              time.Time
	label, endpoint string
	model           string
	cost            money.USD
	exact           bool
	status          int
}

// Writer writes requests and events into a ledger, dated in a time zone.
type Writer struct {
	DB  *ledger.DB
	Loc *time.Location
}

// Request writes one settled request started at t.
func (w Writer) Request(ctx context.Context, t time.Time, label, endpoint, model string, cost money.USD, exact bool) error {
	return w.write(ctx, request{at: t, label: label, endpoint: endpoint, model: model, cost: cost, exact: exact, status: 200})
}

func (w Writer) write(ctx context.Context, r request) error {
	e := ledger.Entry{
		Start: r.at, Day: budget.Day(r.at, w.Loc), TokenID: "tok_" + fmt.Sprintf("%x", len(r.label)), Label: r.label,
		Method: "POST", Path: "/v1/" + strings.ReplaceAll(r.endpoint, ".", "/"), Endpoint: r.endpoint, Model: r.model, Estimate: r.cost + r.cost/4,
	}
	id, err := w.DB.Reserve(ctx, e)
	if err != nil {
		return err
	}
	return w.DB.Settle(ctx, id, r.at.Add(1200*time.Millisecond), meter.Settlement{Cost: r.cost, Exact: r.exact}, r.status, "req_sample")
}

// Event writes one event at t.
func (w Writer) Event(ctx context.Context, t time.Time, kind, label, msg string, amount money.USD) error {
	return w.DB.AddEvent(ctx, ledger.Event{At: t, Day: budget.Day(t, w.Loc), Kind: kind, Label: label, Message: msg, Amount: amount})
}

// Month writes 29 days of history before now's day and today's spend up
// to now, against a daily cap of limit. It returns what it wrote for
// today.
func (w Writer) Month(ctx context.Context, now time.Time, limit money.USD) (money.USD, error) {
	now = now.In(w.Loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, w.Loc)
	rng := rand.New(rand.NewPCG(uint64(today.Unix()), 42))
	for back := 29; back >= 1; back-- {
		day := today.AddDate(0, 0, -back)
		if err := w.pastDay(ctx, rng, day, back, limit); err != nil {
			return 0, err
		}
	}
	return w.today(ctx, today, now)
}

// pastDay writes one earlier day: weekdays busier than weekends, and on
// the ninth day back a DALL-E session that ran into the cap.
func (w Writer) pastDay(ctx context.Context, rng *rand.Rand, day time.Time, back int, limit money.USD) error {
	if wd := day.Weekday(); (wd == time.Saturday || wd == time.Sunday) && rng.IntN(3) > 0 {
		return nil
	}
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	var spent money.USD
	add := func(t time.Time, label, endpoint, model string, cost money.USD) error {
		spent += cost
		return w.Request(ctx, t, label, endpoint, model, cost, true)
	}
	n := 6 + rng.IntN(30)
	for i := range n {
		h := 9 + rng.IntN(10)
		if err := add(at(h, rng.IntN(60)), "day1.ipynb", string(meter.Chat), "gpt-4o-mini", money.USD(300+rng.IntN(2500))); err != nil {
			return err
		}
		if i%4 == 0 {
			if err := add(at(h, rng.IntN(60)), "rag.py", string(meter.Embeddings), "text-embedding-3-small", money.USD(20+rng.IntN(200))); err != nil {
				return err
			}
		}
		if i%3 == 0 {
			if err := add(at(h, rng.IntN(60)), "airline.py", string(meter.Chat), "gpt-4o", money.USD(4000+rng.IntN(30000))); err != nil {
				return err
			}
		}
	}
	if back == 9 {
		// A DALL-E loop that the cap stopped.
		for i := 0; spent+80_000 <= limit; i++ {
			if err := add(at(15, i/3), "airline.py", string(meter.ImageGenerate), "dall-e-3", 80_000); err != nil {
				return err
			}
		}
		if err := w.Event(ctx, at(15, 40), "cap_reached", "airline.py", fmt.Sprintf("daily cap of %s reached (%s spent): requests refused until tomorrow or until the cap is raised", limit, spent), spent); err != nil {
			return err
		}
	}
	if back == 4 {
		if err := w.Event(ctx, at(11, 2), "paused", "", "all requests paused (from the tray)", 0); err != nil {
			return err
		}
		if err := w.Event(ctx, at(11, 9), "resumed", "", "requests resumed", 0); err != nil {
			return err
		}
	}
	return nil
}

// today writes the day so far: notebook work in the morning, images at
// noon, and a TTS loop in the last half hour before now.
func (w Writer) today(ctx context.Context, today, now time.Time) (money.USD, error) {
	var spent money.USD
	add := func(t time.Time, label, endpoint, model string, cost money.USD, exact bool) error {
		if !t.Before(now) {
			return nil
		}
		spent += cost
		return w.Request(ctx, t, label, endpoint, model, cost, exact)
	}
	at := func(h, m int) time.Time { return today.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	for i := range 14 {
		if err := add(at(9, 5+i*4), "day5.ipynb", string(meter.Chat), "gpt-4o-mini", money.USD(900+i*137), true); err != nil {
			return 0, err
		}
	}
	for i := range 6 {
		if err := add(at(11, 10+i*3), "airline.py", string(meter.Chat), "gpt-4o", money.USD(21_000+i*1_900), true); err != nil {
			return 0, err
		}
	}
	for i := range 9 {
		if err := add(at(12, 2+i*5), "airline.py", string(meter.ImageGenerate), "dall-e-3", 40_000, true); err != nil {
			return 0, err
		}
	}
	// The loop: chatlog.md read aloud again and again, 5 000 characters a
	// time at $15 per million characters.
	for m := 30; m >= 1; m-- {
		if err := add(now.Add(-time.Duration(m)*time.Minute), "chatlog.py", string(meter.Speech), "tts-1", 75_000, true); err != nil {
			return 0, err
		}
	}
	return spent, nil
}
