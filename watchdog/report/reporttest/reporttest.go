// Package reporttest writes a realistic day into a ledger for tests and
// for the sample report in docs/: a morning of ordinary work, a rehearsal,
// then the afternoon of the incident keycap exists for — a script that
// sends the same growing chat log to text-to-speech again and again while
// generating images — stopped by keycap's guards and its daily cap, plus
// images made with the same key from a notebook keycap never saw.
package reporttest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/meter"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/pricing"
	"github.com/keycap/keycap/watchdog/standin"
)

// Day is the day of the incident, in Zone.
const (
	Day  = "2025-04-23"
	Zone = "Europe/Berlin"
	// Cap is the daily cap in force.
	Cap = 5 * money.Dollar
)

// Incident is what MustWriteIncident wrote.
type Incident struct {
	Location *time.Location
	// Entries are the real (not rehearsed) requests, oldest first.
	Entries []ledger.Entry
	// Spent is what they were charged.
	Spent money.USD
	// Rehearsed counts the rehearsed requests.
	Rehearsed int
	// Elsewhere is usage of the same key that never went through keycap:
	// images from a notebook, for the organization stand-in.
	Elsewhere []standin.OrgUsage
}

// at returns the time h:m:s on Day in loc.
func at(loc *time.Location, h, m, s int) time.Time {
	return time.Date(2025, 4, 23, h, m, s, 0, loc)
}

// MustWriteIncident writes the incident day into db.
func MustWriteIncident(tb testing.TB, db *ledger.DB) Incident {
	tb.Helper()
	loc, err := time.LoadLocation(Zone)
	if err != nil {
		tb.Fatal(err)
	}
	prices, err := pricing.Load(nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	w := &writer{tb: tb, db: db, loc: loc, prices: prices, inc: Incident{Location: loc}}

	// Morning: the course's notebook, converted to a script.
	for i := range 36 {
		w.chat(at(loc, 9, 14, 0).Add(time.Duration(i)*62*time.Second), "day5.py", "gpt-4o-mini", 1180+i*9, 310, false)
	}
	for i := range 6 {
		w.chat(at(loc, 9, 31, 20).Add(time.Duration(i)*97*time.Second), "day5.py", "gpt-4o", 2350+i*40, 520, false)
	}
	for i := range 4 {
		w.embed(at(loc, 9, 50, 5).Add(time.Duration(i)*3*time.Second), "day5.py", 820)
	}

	// Early afternoon: a rehearsal of the new app against keycap's stand-in.
	for i := range 12 {
		w.speech(at(loc, 13, 31, 0).Add(time.Duration(i)*5*time.Second), "airline_multi-modal.py", 2600+i*120, "", true)
	}
	w.image(at(loc, 13, 32, 10), "airline_multi-modal.py", true)

	// The incident.
	label := "airline_multi-modal.py"
	w.chat(at(loc, 14, 2, 10), label, "gpt-4o-mini", 1450, 260, false)
	w.image(at(loc, 14, 2, 40), label, false)
	w.chat(at(loc, 14, 3, 5), label, "gpt-4o-mini", 1720, 240, false)
	w.image(at(loc, 14, 3, 30), label, false)
	// The same chat log read aloud twenty times...
	t := at(loc, 14, 4, 0)
	for i := range 20 {
		w.speech(t, label, 4096, "fp-chatlog-tts", false)
		if i == 9 {
			w.event(t.Add(time.Second), "loop_warning", label, w.spentBy(label), "the same request was sent 10 times in 36s by airline_multi-modal.py (audio.speech, tts-1)")
		}
		t = t.Add(4 * time.Second)
	}
	w.event(t, "loop_blocked", label, w.spentBy(label), "airline_multi-modal.py sent the same audio.speech request 20 times in 76s: further copies are refused for 10 minutes")
	// ...then, as the log grows, a new text each time: no loop, but spend
	// far too fast for the cap.
	t = t.Add(6 * time.Second)
	for i := range 21 {
		w.speech(t, label, 4096, "", false)
		if i%4 == 3 {
			w.image(t.Add(time.Second), label, false)
		}
		t = t.Add(3 * time.Second)
	}
	w.event(t, "spend_rate", label, w.spent, "spent "+w.windowSpent(t, 5*time.Minute).String()+" in the last 5 minutes, over 30% of the daily cap: all requests paused")
	w.event(t, "paused", "", 0, "all requests paused (spend_rate)")
	// The user resumes, thinking it a glitch; the cap stops the rest.
	t = at(loc, 14, 12, 30)
	w.event(t, "resumed", "", 0, "requests resumed")
	t = t.Add(20 * time.Second)
	for w.spent+61_440 <= Cap {
		w.speech(t, label, 4096, "", false)
		if w.spent+40_000 <= Cap {
			w.image(t.Add(2*time.Second), label, false)
		}
		t = t.Add(5 * time.Second)
	}
	w.event(t, "cap_reached", label, w.spent, fmt.Sprintf("daily cap of %s reached (%s spent): requests refused until tomorrow or until the cap is raised", Cap, w.spent))
	w.event(t.Add(4*time.Minute), "paused", "", 0, "all requests paused (user)")

	// A notebook with the old key made images keycap never saw.
	for i := range 20 {
		w.inc.Elsewhere = append(w.inc.Elsewhere, standin.OrgUsage{At: at(loc, 14, 6, 0).Add(time.Duration(i) * 20 * time.Second),
			Endpoint: "images", Model: "dall-e-3", APIKeyID: "key_notebook7Qx", ProjectID: "proj_course", Requests: 1,
			Units: standin.Units{Images: 1, Size: "1024x1024", Quality: "standard"}, Source: "image.generation", USD: 0.04})
	}
	w.event(at(loc, 14, 31, 0), "untracked_spend", "", 80*money.Cent,
		"OpenAI reports $0.80 of spend today that did not go through keycap (up to 14:15); most of it dall-e-3 on key key_notebook7Qx in project proj_course, $0.80: is the key in use elsewhere?")
	return w.inc
}

type writer struct {
	tb     testing.TB
	db     *ledger.DB
	loc    *time.Location
	prices *pricing.Table
	inc    Incident
	spent  money.USD
	seq    int
	warned [2]bool
}

func (w *writer) spentBy(label string) money.USD {
	var s money.USD
	for _, e := range w.inc.Entries {
		if e.Label == label {
			s += e.Cost
		}
	}
	return s
}

func (w *writer) windowSpent(now time.Time, d time.Duration) money.USD {
	var s money.USD
	for _, e := range w.inc.Entries {
		if e.Start.After(now.Add(-d)) {
			s += e.Cost
		}
	}
	return s
}

func (w *writer) event(t time.Time, kind, label string, amount money.USD, msg string) {
	w.tb.Helper()
	if err := w.db.AddEvent(context.Background(), ledger.Event{At: t, Day: Day, Kind: kind, Label: label, Message: msg, Amount: amount}); err != nil {
		w.tb.Fatal(err)
	}
}

func (w *writer) write(e ledger.Entry, u meter.Units, cost money.USD) {
	w.tb.Helper()
	w.seq++
	e.Day, e.TokenID, e.Method, e.Estimate, e.Exact, e.Units = Day, "tok_"+e.Label[:4], "POST", cost, true, u
	if e.Fingerprint == "" {
		e.Fingerprint = fmt.Sprintf("fp%06d", w.seq)
	}
	ctx := context.Background()
	id, err := w.db.Reserve(ctx, e)
	if err != nil {
		w.tb.Fatal(err)
	}
	end := e.Start.Add(1200 * time.Millisecond)
	reqID := fmt.Sprintf("req_%012x", w.seq*7919)
	if err := w.db.Settle(ctx, id, end, meter.Settlement{Cost: cost, Units: u, Exact: true}, 200, reqID); err != nil {
		w.tb.Fatal(err)
	}
	if e.Rehearsed {
		w.inc.Rehearsed++
		return
	}
	e.ID, e.End, e.Cost, e.State, e.Status, e.RequestID = id, end, cost, ledger.Settled, 200, reqID
	w.inc.Entries = append(w.inc.Entries, e)
	w.inc.Spent += cost
	w.spent += cost
	for i, f := range []float64{0.5, 0.8} {
		if limit := money.USD(f * float64(Cap)); !w.warned[i] && w.spent >= limit {
			w.warned[i] = true
			w.event(e.Start.Add(time.Second), "threshold", "", w.spent, fmt.Sprintf("%.0f%% of the daily cap spent (%s of %s)", 100*f, w.spent, Cap))
		}
	}
}

func (w *writer) chat(t time.Time, label, model string, in, out int, rehearsed bool) {
	p, card, _ := w.prices.Lookup(model)
	u := meter.Units{Tokens: pricing.Tokens{Input: int64(in), Output: int64(out)}}
	w.write(ledger.Entry{Start: t, Label: label, Path: "/chat/completions", Endpoint: string(meter.Chat), Model: model, Card: card,
		Rehearsed: rehearsed}, u, p.TokenCost(u.Tokens, pricing.TierDefault))
}

func (w *writer) embed(t time.Time, label string, in int) {
	p, card, _ := w.prices.Lookup("text-embedding-3-small")
	u := meter.Units{Tokens: pricing.Tokens{Input: int64(in)}}
	w.write(ledger.Entry{Start: t, Label: label, Path: "/embeddings", Endpoint: string(meter.Embeddings), Model: "text-embedding-3-small", Card: card},
		u, p.TokenCost(u.Tokens, pricing.TierDefault))
}

func (w *writer) speech(t time.Time, label string, chars int, fp string, rehearsed bool) {
	p, card, _ := w.prices.Lookup("tts-1")
	w.write(ledger.Entry{Start: t, Label: label, Path: "/audio/speech", Endpoint: string(meter.Speech), Model: "tts-1", Card: card,
		Fingerprint: fp, Rehearsed: rehearsed}, meter.Units{Characters: int64(chars)}, p.CharacterCost(int64(chars)))
}

func (w *writer) image(t time.Time, label string, rehearsed bool) {
	cost, card, _ := w.prices.ImageCost("dall-e-3", "1024x1024", "standard", 1)
	w.write(ledger.Entry{Start: t, Label: label, Path: "/images/generations", Endpoint: string(meter.ImageGenerate), Model: "dall-e-3",
		Card: card, Rehearsed: rehearsed}, meter.Units{Images: 1}, cost)
}

// KeycapKey and KeycapProject are what the organization APIs attribute
// keycap's own requests to in OrgUsage.
const (
	KeycapKey     = "key_keycap3Fd"
	KeycapProject = "proj_course"
)

// OrgUsage is the day as OpenAI's organization usage reports it: keycap's
// real requests, made with KeycapKey, and the usage from elsewhere.
func (inc Incident) OrgUsage() []standin.OrgUsage {
	var out []standin.OrgUsage
	for _, e := range inc.Entries {
		u := standin.OrgUsage{At: e.Start, Model: e.Model, APIKeyID: KeycapKey, ProjectID: KeycapProject, Requests: 1, USD: e.Cost.Dollars(),
			Units: standin.Units{InputTokens: int(e.Units.Input), CachedTokens: int(e.Units.Cached), OutputTokens: int(e.Units.Output),
				Characters: int(e.Units.Characters), Images: int(e.Units.Images), Seconds: e.Units.Seconds}}
		switch meter.Endpoint(e.Endpoint) {
		case meter.Chat, meter.Responses:
			u.Endpoint = "completions"
		case meter.Embeddings:
			u.Endpoint = "embeddings"
		case meter.Speech:
			u.Endpoint = "audio_speeches"
		case meter.ImageGenerate:
			u.Endpoint, u.Source, u.Units.Size = "images", "image.generation", "1024x1024"
		default:
			continue
		}
		out = append(out, u)
	}
	return append(out, inc.Elsewhere...)
}
