package guard_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/guard"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/problem"
)

// TestIncidentReplayIsStoppedInSeconds replays the seed incident against
// the guards with the default config and a $10 cap: day5.py sends the same
// long chatlog.md to TTS every 10 seconds (about $4.50 a minute) while
// airline_multi-modal.py makes a DALL-E 3 image every 72 seconds, for 30
// minutes. Unguarded, that was $132. The budget is simulated: it refuses
// while paused and at the cap.
func TestIncidentReplayIsStoppedInSeconds(t *testing.T) {
	g, clock := mustGuard(t, guard.DefaultConfig())
	limit := usd("10")
	var spent money.USD
	paused := false
	var findings []guard.Finding
	var firstPause time.Duration
	resumeAt := 5 * time.Minute // the person reads the notification and resumes

	speech := guard.Request{TokenID: "tok_day5", Label: "day5.py", Endpoint: "audio.speech", Model: "tts-1",
		Fingerprint: "c4a7106d0c0ffee000000001", Estimate: usd("0.75")}
	image := func(i int) guard.Request {
		return guard.Request{TokenID: "tok_airline", Label: "airline_multi-modal.py", Endpoint: "images.generations",
			Model: "dall-e-3", Fingerprint: fmt.Sprintf("1ma6e%019d", i), Estimate: usd("0.08")}
	}
	for s := 0; s <= 30*60; s++ {
		at := time.Duration(s) * time.Second
		clock.Add(time.Second)
		if at == resumeAt {
			paused = false
		}
		var reqs []guard.Request
		if s%10 == 0 {
			reqs = append(reqs, speech)
		}
		if s%72 == 0 {
			reqs = append(reqs, image(s/72))
		}
		for _, r := range reqs {
			fs, err := g.Check(r)
			findings = append(findings, fs...)
			if err != nil {
				continue
			}
			acct := guard.Account{Day: today, Spent: spent, Cap: limit}
			switch {
			case paused:
				err = problem.Errorf(problem.Paused, "keycap: all requests are paused (paused because spending was too fast).")
			case spent+r.Estimate > limit:
				err = problem.Errorf(problem.DailyCapReached, "keycap: daily cap reached")
			}
			if err != nil {
				findings = append(findings, g.Denied(r.Label, err, acct)...)
				continue
			}
			spent += r.Estimate
			acct.Spent = spent
			for _, f := range g.Spent(r.Label, r.Estimate, acct) {
				findings = append(findings, f)
				if f.Pause && !paused {
					paused = true
					if firstPause == 0 {
						firstPause = at
					}
				}
			}
		}
	}

	if firstPause == 0 || firstPause > 30*time.Second {
		t.Errorf("breaker tripped at %v, want within 30 s", firstPause)
	}
	// 3 speeches by the time of the pause, then images only: the loop is
	// blocked while paused and stays blocked after the resume.
	if max := usd("4.01"); spent > max {
		t.Errorf("spent %v in 30 min, want at most %v (unguarded: $132)", spent, max)
	}
	var got []string
	for _, f := range findings {
		got = append(got, f.Kind+" "+f.Label)
	}
	want := []string{
		"loop_warning day5.py",
		"spend_rate day5.py",
		"token_denied day5.py",
		"loop_blocked day5.py",                // while paused
		"token_denied airline_multi-modal.py", // its image at 72 s, while paused
	}
	if !slices.Equal(got, want) {
		t.Errorf("findings:\n%q\nwant:\n%q", got, want)
	}
	if blocks := g.Blocks(); len(blocks) != 1 || blocks[0].Label != "day5.py" || blocks[0].Refused < 100 {
		t.Errorf("blocks = %+v, want day5.py's loop, refused 100+ times", blocks)
	}
	t.Logf("spent %v; paused at %v", spent, firstPause)
}
