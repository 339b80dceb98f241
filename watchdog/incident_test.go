package watchdog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/keycap/keycap/watchdog/guard"
	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/problem"
)

// chatlog is a long Markdown file like the one the incident's script read
// aloud again and again.
func chatlog() []string {
	var b strings.Builder
	for i := 0; b.Len() < 12_000; i++ {
		fmt.Fprintf(&b, "## Turn %d\n**User:** What does a return ticket to London cost?\n**Assistant:** A return ticket to London is $799. ", i)
	}
	text := b.String()
	var chunks []string
	for len(text) > 0 {
		n := min(4096, len(text))
		chunks = append(chunks, text[:n])
		text = text[n:]
	}
	return chunks
}

// replay runs the incident's script: four workers read the same chunks of
// chatlog.md aloud in a loop, ignoring errors as the script did, while a
// fifth asks DALL-E 3 for an image every few (here: 50 ms) seconds. It stops
// when every worker has been refused for a while.
func replay(t *testing.T, c *openai.Client) {
	t.Helper()
	ctx := context.Background()
	chunks := chatlog()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			refused := 0
			for i := 0; i < 60 && refused < 8; i++ {
				r, err := c.CreateSpeech(ctx, openai.CreateSpeechRequest{Model: openai.TTSModel1, Voice: openai.VoiceOnyx, Input: chunks[i%len(chunks)]})
				if err != nil {
					refused++
					continue
				}
				io.Copy(io.Discard, r)
				r.Close()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		refused := 0
		for i := 0; i < 60 && refused < 5; i++ {
			_, err := c.CreateImage(ctx, openai.ImageRequest{Model: openai.CreateImageModelDallE3, Prompt: fmt.Sprintf("London skyline, take %d", i), ResponseFormat: openai.CreateImageResponseFormatB64JSON})
			if err != nil {
				refused++
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	wg.Wait()
}

func kinds(es []ledger.Event) []string {
	var out []string
	for i := len(es) - 1; i >= 0; i-- {
		out = append(out, es[i].Kind)
	}
	return out
}

func TestIncidentReplayIsStoppedEarly(t *testing.T) {
	h := MustStart(t) // the defaults: $5 cap, guards on
	c := h.client(t, "airline_multi-modal.py")
	replay(t, c)
	h.settled(t)
	st := h.w.Status()
	bill := money.FromFloat(h.up.Bill())
	if st.Spent > 150*money.Cent || bill > 150*money.Cent {
		t.Errorf("charged %s (upstream billed %s), want at most $1.50 under a $5 cap", st.Spent, bill)
	}
	if st.Spent < bill {
		t.Errorf("ledger %s below the upstream's bill %s", st.Spent, bill)
	}
	ev, _ := h.w.Ledger().Events(context.Background(), 100)
	order := kinds(ev)
	warn, block := slices.Index(order, guard.KindLoopWarning), slices.Index(order, guard.KindLoopBlocked)
	stop := slices.IndexFunc(order, func(k string) bool { return k == guard.KindSpendRate || k == "cap_reached" })
	if warn < 0 || block < warn || stop < 0 {
		t.Fatalf("events in order %v: want a loop warning, then a block, then the breaker or the cap", order)
	}
	for _, e := range ev {
		switch e.Kind {
		case guard.KindLoopWarning:
			if !strings.Contains(e.Message, "3 times") {
				t.Errorf("loop warned late: %s", e.Message)
			}
		case guard.KindLoopBlocked:
			if !strings.Contains(e.Message, "5 times") {
				t.Errorf("loop blocked late: %s", e.Message)
			}
		}
	}
	// The same order reached the desktop.
	var notes []string
	for _, n := range h.notes.Notifications() {
		notes = append(notes, n.Kind)
	}
	nw, nb := slices.Index(notes, guard.KindLoopWarning), slices.Index(notes, guard.KindLoopBlocked)
	ns := slices.IndexFunc(notes, func(k string) bool { return k == guard.KindSpendRate || k == "cap_reached" })
	if nw < 0 || nb < nw || ns < nb {
		t.Errorf("notifications in order %v: want warning, block, then breaker or cap", notes)
	}
	for _, n := range h.notes.Notifications() {
		if n.Label != "airline_multi-modal.py" && n.Label != "" {
			t.Errorf("notification names %q, not the script", n.Label)
		}
	}
	if !st.Paused && !st.CapReached {
		t.Errorf("after the replay keycap neither paused nor reached the cap: %+v", st)
	}
	// The block says how to lift it, and lifting works.
	_, err := c.CreateSpeech(context.Background(), openai.CreateSpeechRequest{Model: openai.TTSModel1, Voice: openai.VoiceOnyx, Input: chatlog()[0]})
	var ae *openai.APIError
	if errors.As(err, &ae) && ae.Code == problem.LoopBlocked && !strings.Contains(ae.Message, "keycap allow") {
		t.Errorf("loop refusal does not say how to allow it: %s", ae.Message)
	}
	if n := h.w.Allow(""); n == 0 {
		t.Error("Allow lifted no block")
	}
}

// TestIncidentReplayRehearsed runs the same script in rehearsal mode: no
// request leaves the machine, the loop guard fires as it would for real,
// and the projected cost per hour matches what the stand-in would have
// billed for the same run.
func TestIncidentReplayRehearsed(t *testing.T) {
	h := MustStart(t)
	ctx := context.Background()
	tok, info, err := h.w.NewToken(ctx, TokenOptions{Label: "airline_multi-modal.py", TTL: time.Hour, Rehearse: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := openai.DefaultConfig(tok)
	cfg.BaseURL = h.w.ProxyURL()
	start := time.Now()
	replay(t, openai.NewClientWithConfig(cfg))
	h.settled(t)
	elapsed := time.Since(start)
	if n := len(h.up.Requests()); n != 0 {
		t.Fatalf("upstream saw %d requests during a rehearsal", n)
	}
	if st := h.w.Status(); st.Spent != 0 {
		t.Errorf("a rehearsal spent %s for real", st.Spent)
	}
	es, _ := h.w.Ledger().TokenEntries(ctx, info.ID)
	var would money.USD
	for _, e := range es {
		would += e.Charged()
	}
	billed := money.FromFloat(h.w.stand.api.Bill())
	perHour := func(u money.USD) float64 { return u.Dollars() / elapsed.Hours() }
	if got, want := perHour(would), perHour(billed); want == 0 || got < 0.9*want || got > 1.1*want {
		t.Errorf("projected $%.2f/h, the run would have been billed $%.2f/h", got, want)
	}
	ev, _ := h.w.Ledger().Events(ctx, 100)
	order := kinds(ev)
	if w, b := slices.Index(order, "rehearsal_"+guard.KindLoopWarning), slices.Index(order, "rehearsal_"+guard.KindLoopBlocked); w < 0 || b < w {
		t.Errorf("rehearsal events %v: want the loop warned, then blocked", order)
	}
	t.Logf("rehearsal: %d requests in %s would have cost %s (%.2f $/h); stand-in billed %s", len(es), elapsed.Round(time.Millisecond), would, perHour(would), billed)
}
