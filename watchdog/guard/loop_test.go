package guard_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/guard"
	"github.com/keycap/keycap/watchdog/problem"
)

const (
	fpChatlog = "5f1c0ffee0ddba11c0de5eed"
	fpOther   = "a11ce0000000000000000000"
)

func tts(token, fp string) guard.Request {
	return guard.Request{TokenID: token, Label: "day5.py", Endpoint: "audio.speech", Model: "tts-1",
		Fingerprint: fp, Estimate: usd("0.06")}
}

// outcome runs Check and sums it up: "" (passed quietly), "warn",
// "block" (a new block) or "refused" (an existing block).
func outcome(tb testing.TB, g *guard.Guard, r guard.Request) string {
	tb.Helper()
	fs, err := g.Check(r)
	if err != nil && problem.CodeOf(err) != guard.LoopBlocked {
		tb.Fatalf("Check error code = %q, want %q", problem.CodeOf(err), guard.LoopBlocked)
	}
	switch {
	case len(fs) == 0 && err == nil:
		return ""
	case len(fs) == 0 && err != nil:
		return "refused"
	case len(fs) == 1 && fs[0].Kind == guard.KindLoopWarning && err == nil:
		return "warn"
	case len(fs) == 1 && fs[0].Kind == guard.KindLoopBlocked && err != nil:
		return "block"
	}
	tb.Fatalf("Check = %+v, %v: unexpected combination", fs, err)
	return ""
}

func TestLoopGuard(t *testing.T) {
	type step struct {
		after time.Duration
		req   guard.Request
		want  string
	}
	a := tts("tok_a", fpChatlog)
	b := tts("tok_b", fpChatlog)
	other := tts("tok_a", fpOther)
	every := func(d time.Duration, r guard.Request, want ...string) []step {
		var s []step
		for _, w := range want {
			s = append(s, step{d, r, w})
		}
		return s
	}
	tests := []struct {
		name  string
		cfg   func(*guard.Config)
		steps []step
	}{
		{
			name:  "warn at the 3rd, block at the 5th, refuse after",
			steps: every(time.Minute, a, "", "", "warn", "", "block", "refused", "refused"),
		},
		{
			name: "block holds after the window has passed",
			steps: append(every(time.Second, a, "", "", "warn", "", "block"),
				step{time.Hour, a, "refused"}),
		},
		{
			name: "hits expire after the window",
			// 5 minutes apart: the one 10 minutes back has left the window.
			steps: every(5*time.Minute, a, "", "", "", "", "", "", ""),
		},
		{
			name:  "just inside the window counts",
			steps: every(4*time.Minute+59*time.Second, a, "", "", "warn", "", ""),
		},
		{
			name:  "one warning per streak",
			cfg:   func(c *guard.Config) { c.LoopBlockAt = 0 },
			steps: append(every(time.Minute, a, "", "", "warn", "", "", "", "", ""), every(11*time.Minute, a, "", "")[0], step{time.Minute, a, ""}, step{time.Minute, a, "warn"}),
		},
		{
			name:  "tokens counted apart",
			steps: []step{{0, a, ""}, {0, b, ""}, {0, a, ""}, {0, b, ""}, {0, a, "warn"}, {0, b, "warn"}, {0, a, ""}, {0, a, "block"}, {0, b, ""}, {0, a, "refused"}, {0, b, "block"}},
		},
		{
			name:  "fingerprints counted apart",
			steps: []step{{0, a, ""}, {0, other, ""}, {0, a, ""}, {0, other, ""}, {0, a, "warn"}, {0, other, "warn"}},
		},
		{
			name:  "no fingerprint, not counted",
			steps: every(time.Second, tts("tok_a", ""), "", "", "", "", "", ""),
		},
		{
			name:  "guard off",
			cfg:   func(c *guard.Config) { c.LoopWarnAt, c.LoopBlockAt = 0, 0 },
			steps: every(time.Second, a, "", "", "", "", "", ""),
		},
		{
			name:  "custom numbers",
			cfg:   func(c *guard.Config) { c.LoopWarnAt, c.LoopBlockAt, c.LoopWindow = 2, 3, time.Minute },
			steps: append(every(10*time.Second, a, "", "warn", "block"), step{time.Hour, a, "refused"}),
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
				clock.Add(s.after)
				if got := outcome(t, g, s.req); got != s.want {
					t.Fatalf("step %d (%s): got %q, want %q", i, s.req.TokenID, got, s.want)
				}
			}
		})
	}
}

func TestLoopMessages(t *testing.T) {
	g, clock := mustGuard(t, guard.DefaultConfig())
	r := tts("tok_a", fpChatlog)
	var warn, block []guard.Finding
	var err error
	for i := range 5 {
		if i > 0 {
			clock.Add(time.Minute)
		}
		fs, e := g.Check(r)
		switch i {
		case 2:
			warn = fs
		case 4:
			block, err = fs, e
		}
	}
	if len(warn) != 1 || len(block) != 1 {
		t.Fatalf("warn %v, block %v: want one of each", warn, block)
	}
	w := warn[0]
	mustContain(t, "warning", w.Message, `"day5.py"`, "same tts-1 speech request 3 times in 2 min", "up to $0.18", "block it at 5")
	if w.Label != "day5.py" || w.Amount != usd("0.18") || w.Critical || w.Fingerprint != fpChatlog || !w.At.Equal(start.Add(2*time.Minute)) {
		t.Errorf("warning = %+v", w)
	}
	b := block[0]
	mustContain(t, "block", b.Message, `"day5.py"`, "5 times in 4 min", "let 4 through (up to $0.24)", "keycap allow 5f1c0ffee0dd", "tray")
	mustContain(t, "block title", b.Title, "blocked", `"day5.py"`)
	if b.Amount != usd("0.24") {
		t.Errorf("block amount = %v, want $0.24", b.Amount)
	}
	if problem.Status(problem.CodeOf(err)) == 0 || problem.CodeOf(err) != "loop_blocked" {
		t.Errorf("refusal code = %q, want loop_blocked", problem.CodeOf(err))
	}
	mustContain(t, "refusal", problem.MessageOf(err), "tts-1 speech request was sent 5 times within 10 min", "keycap allow 5f1c0ffee0dd", "keycap allow --all")

	blocks := g.Blocks()
	if len(blocks) != 1 {
		t.Fatalf("Blocks = %+v, want one", blocks)
	}
	want := guard.Block{ID: "5f1c0ffee0dd", Fingerprint: fpChatlog, TokenID: "tok_a", Label: "day5.py", Endpoint: "audio.speech",
		Model: "tts-1", Count: 5, Spent: usd("0.24"), First: start, Since: start.Add(4 * time.Minute), Refused: 1}
	if got := blocks[0]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Blocks()[0] = %+v, want %+v", got, want)
	}
	_, _ = g.Check(r)
	if got := g.Blocks()[0].Refused; got != 2 {
		t.Errorf("Refused = %d, want 2", got)
	}
}

// block makes g block r.
func block(tb testing.TB, g *guard.Guard, r guard.Request) {
	tb.Helper()
	for range 4 {
		_, _ = g.Check(r)
	}
	if got := outcome(tb, g, r); got != "block" {
		tb.Fatalf("5th Check = %q, want block", got)
	}
}

func TestAllow(t *testing.T) {
	a := tts("tok_a", fpChatlog)
	b := tts("tok_b", fpChatlog)
	b.Label = "airline.py"
	c := tts("tok_a", fpOther)
	tests := []struct {
		who  string
		want []string // token/fingerprint of the blocks lifted
	}{
		{"5f1c0ffee0dd", []string{"tok_a/" + fpChatlog, "tok_b/" + fpChatlog}},
		{fpChatlog, []string{"tok_a/" + fpChatlog, "tok_b/" + fpChatlog}},
		{"5f1c0ffe", []string{"tok_a/" + fpChatlog, "tok_b/" + fpChatlog}},
		{"5f1c0ff", nil}, // too short to be a prefix
		{"tok_a", []string{"tok_a/" + fpOther, "tok_a/" + fpChatlog}},
		{"airline.py", []string{"tok_b/" + fpChatlog}},
		{"day5.py", []string{"tok_a/" + fpOther, "tok_a/" + fpChatlog}},
		{"", nil},
		{"nothing", nil},
	}
	for _, tt := range tests {
		t.Run(tt.who, func(t *testing.T) {
			g, clock := mustGuard(t, guard.DefaultConfig())
			block(t, g, c)
			clock.Add(time.Second)
			block(t, g, a)
			clock.Add(time.Second)
			block(t, g, b)
			var got []string
			for _, bl := range g.Allow(tt.who) {
				got = append(got, bl.TokenID+"/"+bl.Fingerprint)
			}
			// Allow does not promise an order.
			if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(tt.want)) {
				t.Fatalf("Allow(%q) lifted %v, want %v", tt.who, got, tt.want)
			}
			if n := len(g.Blocks()); n != 3-len(tt.want) {
				t.Fatalf("%d blocks left, want %d", n, 3-len(tt.want))
			}
		})
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestAllowRestartsCount(t *testing.T) {
	g, _ := mustGuard(t, guard.DefaultConfig())
	r := tts("tok_a", fpChatlog)
	block(t, g, r)
	if got := len(g.Allow("5f1c0ffee0dd")); got != 1 {
		t.Fatalf("Allow lifted %d, want 1", got)
	}
	// The loop goes on: warned and blocked again after as many repeats.
	var got []string
	for range 5 {
		got = append(got, outcome(t, g, r))
	}
	if want := []string{"", "", "warn", "", "block"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after Allow: %q, want %q", got, want)
	}
}

func TestAllowAllAndForget(t *testing.T) {
	g, _ := mustGuard(t, guard.DefaultConfig())
	block(t, g, tts("tok_a", fpChatlog))
	block(t, g, tts("tok_b", fpOther))
	if got := g.AllowAll(); got != 2 {
		t.Fatalf("AllowAll = %d, want 2", got)
	}
	if got := len(g.Blocks()); got != 0 {
		t.Fatalf("%d blocks after AllowAll", got)
	}
	block(t, g, tts("tok_a", fpChatlog))
	g.Forget("tok_a")
	if got := len(g.Blocks()); got != 0 {
		t.Fatalf("%d blocks after Forget", got)
	}
	if got := outcome(t, g, tts("tok_a", fpChatlog)); got != "" {
		t.Fatalf("after Forget = %q, want a fresh count", got)
	}
}

func TestBlocksSurviveSetConfig(t *testing.T) {
	g, _ := mustGuard(t, guard.DefaultConfig())
	r := tts("tok_a", fpChatlog)
	block(t, g, r)
	cfg := guard.DefaultConfig()
	cfg.LoopWarnAt, cfg.LoopBlockAt = 0, 0
	if err := g.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if got := outcome(t, g, r); got != "refused" {
		t.Fatalf("after turning the guard off: %q, want refused until allowed", got)
	}
	g.AllowAll()
	if got := outcome(t, g, r); got != "" {
		t.Fatalf("after AllowAll: %q, want passed", got)
	}
}

func TestUnlabelledScript(t *testing.T) {
	g, _ := mustGuard(t, guard.DefaultConfig())
	r := tts("tok_a", fpChatlog)
	r.Label, r.Model, r.Endpoint = "", "", "images.generations"
	var fs []guard.Finding
	for range 3 {
		fs, _ = g.Check(r)
	}
	if len(fs) != 1 {
		t.Fatalf("3rd Check = %+v, want a warning", fs)
	}
	mustContain(t, "warning", fs[0].Message, "an unlabelled script sent the same image request")
}

func TestCheckConcurrent(t *testing.T) {
	g, _ := mustGuard(t, guard.DefaultConfig())
	var mu sync.Mutex
	count := map[string]int{}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 50 {
				r := tts(fmt.Sprint("tok_", i%4), fpChatlog)
				fs, err := g.Check(r)
				mu.Lock()
				for _, f := range fs {
					count[f.Kind]++
				}
				if err != nil {
					count["refused"]++
				}
				mu.Unlock()
				g.Upstream(r.Label, 429)
			}
		})
	}
	wg.Wait()
	// Four tokens: each warned once and blocked once; the rest refused.
	if count[guard.KindLoopWarning] != 4 || count[guard.KindLoopBlocked] != 4 || count["refused"] != 16*50-4*4 {
		t.Fatalf("counts = %v", count)
	}
	if !strings.HasPrefix(g.Blocks()[0].ID, "5f1c") {
		t.Fatalf("Blocks = %+v", g.Blocks())
	}
}
