package watchdog

import (
	"context"
	"fmt"
	"time"

	"github.com/keycap/keycap/watchdog/budget"
	"github.com/keycap/keycap/watchdog/guard"
	"github.com/keycap/keycap/watchdog/notify"
)

// watch is one account's guards: the real account, or the rehearsal one,
// whose findings are told apart in events and notifications.
type watch struct {
	guard    *guard.Guard
	budget   *budget.Budget
	rehearse bool
}

func (w *Watchdog) watchFor(rehearse bool) *watch {
	if rehearse {
		return w.rwatch
	}
	return w.watch
}

// account is today's account as the guards need it.
func (x *watch) account(now time.Time) guard.Account {
	s := x.budget.Snapshot(now)
	a := guard.Account{Day: s.Day, Spent: s.Spent, Cap: s.Cap}
	if len(s.ByLabel) > 0 {
		a.TopLabel, a.TopSpent = s.ByLabel[0].Name, s.ByLabel[0].Spent
	}
	return a
}

// report acts on what the guards found: pause if asked, record an event,
// and notify the desktop.
func (w *Watchdog) report(x *watch, fs ...guard.Finding) {
	for _, f := range fs {
		if f.Pause && x.budget.Paused() != "" {
			continue // requests in flight when the breaker tripped trip it again
		}
		if f.Pause {
			if x.rehearse {
				x.budget.Pause(guard.SpendRate)
			} else if err := w.Pause(guard.SpendRate); err != nil {
				w.log.Error("pause for spend rate", "err", err)
				x.budget.Pause(guard.SpendRate)
			}
		}
		kind, title, msg := f.Kind, f.Title, f.Message
		if kind == guard.KindThreshold && f.Critical {
			kind = "cap_reached"
		}
		if x.rehearse {
			kind, title, msg = "rehearsal_"+kind, "Rehearsal: "+title, "rehearsal (nothing was paid): "+msg
		}
		w.event(kind, f.Label, f.Amount, msg)
		if err := w.notifier.Notify(notify.Notification{Kind: kind, Label: f.Label, Title: title, Message: msg, Critical: f.Critical}); err != nil {
			w.log.Debug("notify", "err", err)
		}
	}
}

// Blocks lists the requests the loop guard is refusing.
func (w *Watchdog) Blocks() []guard.Block {
	return append(w.watch.guard.Blocks(), w.rwatch.guard.Blocks()...)
}

// Allow lifts loop blocks: by block id, fingerprint, token id or script
// label, or all of them when who is empty. It returns how many it lifted.
func (w *Watchdog) Allow(who string) int {
	n := 0
	if who == "" {
		n = w.watch.guard.AllowAll() + w.rwatch.guard.AllowAll()
	} else {
		n = len(w.watch.guard.Allow(who)) + len(w.rwatch.guard.Allow(who))
	}
	if n > 0 {
		what := "all loop blocks"
		if who != "" {
			what = fmt.Sprintf("loop blocks matching %q", who)
		}
		w.event("allowed", who, 0, fmt.Sprintf("lifted %s (%d)", what, n))
	}
	return n
}

// probeNotifications checks, in the background, whether a notification
// service is reachable, so Status can say when notifications are off.
func (w *Watchdog) probeNotifications(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err := notify.Probe(ctx)
	w.mu.Lock()
	w.notifyErr = err
	w.mu.Unlock()
	w.changed()
}
