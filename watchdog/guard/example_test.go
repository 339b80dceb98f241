package guard_test

import (
	"fmt"
	"time"

	"github.com/keycap/keycap/watchdog/guard"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/problem"
)

// The seed incident's loop: the same chatlog.md sent to TTS once a minute.
func ExampleGuard_Check() {
	g, _ := guard.New(guard.DefaultConfig())
	now := time.Date(2025, 4, 23, 14, 0, 0, 0, time.UTC)
	g.Now = func() time.Time { return now }
	r := guard.Request{TokenID: "tok_1", Label: "day5.py", Endpoint: "audio.speech", Model: "tts-1",
		Fingerprint: "5f1c0ffee0ddba11c0de5eed", Estimate: 75 * money.Cent}
	for i := 1; i <= 6; i++ {
		findings, err := g.Check(r)
		for _, f := range findings {
			fmt.Printf("%d: %s: %s\n", i, f.Kind, f.Message)
		}
		if err != nil {
			fmt.Printf("%d: %s: %s\n", i, problem.CodeOf(err), problem.MessageOf(err))
		}
		now = now.Add(time.Minute)
	}
	fmt.Println(len(g.Allow("5f1c0ffee0dd")), "block lifted")
	// Output:
	// 3: loop_warning: "day5.py" sent the same tts-1 speech request 3 times in 2 min (up to $2.25); keycap let it through and will block it at 5 — stop the script if this is a loop
	// 5: loop_blocked: "day5.py" sent the same tts-1 speech request 5 times in 4 min; keycap let 4 through (up to $3.00) and now refuses it — if the repeats are intended, run `keycap allow 5f1c0ffee0dd` or lift the block from the tray
	// 5: loop_blocked: keycap: this exact tts-1 speech request was sent 5 times within 10 min, so keycap blocked it as a loop. If the repeats are intended, run `keycap allow 5f1c0ffee0dd` (or `keycap allow --all`), or lift the block from the tray.
	// 6: loop_blocked: keycap: this exact tts-1 speech request was sent 5 times within 10 min, so keycap blocked it as a loop. If the repeats are intended, run `keycap allow 5f1c0ffee0dd` (or `keycap allow --all`), or lift the block from the tray.
	// 1 block lifted
}

// A settlement that makes spend too fast pauses everything; one that
// crosses a fraction of the cap is told once.
func ExampleGuard_Spent() {
	g, _ := guard.New(guard.DefaultConfig())
	now := time.Date(2025, 4, 23, 14, 0, 0, 0, time.UTC)
	g.Now = func() time.Time { return now }
	acct := guard.Account{Day: "2025-04-23", Cap: 10 * money.Dollar}
	steps := []struct {
		after time.Duration
		cost  money.USD
	}{{0, 120 * money.Cent}, {time.Minute, 90 * money.Cent}, {10 * time.Minute, 190 * money.Cent}, {10 * time.Minute, 110 * money.Cent}}
	for _, s := range steps {
		now = now.Add(s.after)
		acct.Spent += s.cost
		for _, f := range g.Spent("day5.py", s.cost, acct) {
			fmt.Printf("%s (critical %v, pause %v): %s\n", f.Kind, f.Critical, f.Pause, f.Message)
		}
	}
	// Output:
	// spend_rate (critical true, pause true): $2.10 was spent in the last 5 min, over the limit of 20% of the $10.00 daily cap; most by "day5.py" ($2.10); keycap paused every token — check your scripts, then run `keycap resume` or resume from the tray
	// threshold (critical false, pause false): $5.10 of today's $10.00 cap is spent, past 50%; last by "day5.py"; keycap lets requests through until the cap — check `keycap status`, and stop any script that should not be spending
}
