package notify

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxSlots bounds what a Throttle remembers; past it, kinds not seen for a
// whole interval and with nothing folded are forgotten first.
const maxSlots = 1024

// Throttle passes on at most one notification of the same Kind for the
// same Label per interval. Later ones are folded: counted, and the count
// is shown in the next one delivered ("… (and 4 more like this)"). A
// critical notification is never folded into a count of ordinary ones, so
// an escalation gets through at once. Create it with NewThrottle.
type Throttle struct {
	// Now is the clock, time.Now by default. Set it before first use.
	Now func() time.Time

	next  Notifier
	every time.Duration

	mu    sync.Mutex
	slots map[slotKey]*slot
}

type slotKey struct{ kind, label string }

type slot struct {
	sent     time.Time
	critical bool
	folded   int
	latest   Notification
}

// Folded describes notifications held back by a Throttle.
type Folded struct {
	Kind  string `json:"kind"`
	Label string `json:"label,omitempty"`
	// Count is how many were folded since Sent.
	Count int `json:"count"`
	// Sent is when the last one of this kind was delivered.
	Sent time.Time `json:"sent"`
	// Latest is the newest one folded.
	Latest Notification `json:"latest"`
}

// NewThrottle returns a Throttle in front of next that lets one
// notification of a kind for a label through per every (a minute if every
// is not positive).
func NewThrottle(next Notifier, every time.Duration) *Throttle {
	if every <= 0 {
		every = time.Minute
	}
	return &Throttle{Now: time.Now, next: next, every: every, slots: map[slotKey]*slot{}}
}

func (t *Throttle) now() time.Time {
	if t.Now == nil {
		return time.Now()
	}
	return t.Now()
}

// Notify delivers n, or folds it when one like it went out less than the
// interval ago. A folded notification is not an error.
func (t *Throttle) Notify(n Notification) error {
	now := t.now()
	t.mu.Lock()
	k := slotKey{n.Kind, n.Label}
	s := t.slots[k]
	if s != nil && now.Sub(s.sent) < t.every && now.Sub(s.sent) >= 0 && !(n.Critical && !s.critical) {
		s.folded++
		s.latest = n
		t.mu.Unlock()
		return nil
	}
	folded := 0
	if s == nil {
		if len(t.slots) >= maxSlots {
			t.prune(now)
		}
		s = &slot{}
		t.slots[k] = s
	}
	folded = s.folded
	*s = slot{sent: now, critical: n.Critical}
	t.mu.Unlock()
	return t.next.Notify(withCount(n, folded))
}

// Flush delivers, for each kind and label whose interval has passed with
// notifications folded, the newest of them with the count of the others,
// so that a burst that stopped is still told in full. Call it about once
// per interval.
func (t *Throttle) Flush() error {
	now := t.now()
	t.mu.Lock()
	var due []Notification
	for k, s := range t.slots {
		switch {
		case s.folded > 0 && now.Sub(s.sent) >= t.every:
			due = append(due, withCount(s.latest, s.folded-1))
			*s = slot{sent: now, critical: s.latest.Critical}
		case s.folded == 0 && now.Sub(s.sent) >= t.every:
			delete(t.slots, k)
		}
	}
	t.mu.Unlock()
	slices.SortFunc(due, func(a, b Notification) int {
		return strings.Compare(a.Kind+"\x00"+a.Label, b.Kind+"\x00"+b.Label)
	})
	var errs []error
	for _, n := range due {
		if err := t.next.Notify(n); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// Pending lists the notifications folded and not yet told, by kind and
// label.
func (t *Throttle) Pending() []Folded {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Folded
	for k, s := range t.slots {
		if s.folded > 0 {
			out = append(out, Folded{Kind: k.kind, Label: k.label, Count: s.folded, Sent: s.sent, Latest: s.latest})
		}
	}
	slices.SortFunc(out, func(a, b Folded) int {
		return strings.Compare(a.Kind+"\x00"+a.Label, b.Kind+"\x00"+b.Label)
	})
	return out
}

// prune forgets quiet slots, and if that is not enough the quarter sent
// longest ago, folded counts and all; the caller holds mu.
func (t *Throttle) prune(now time.Time) {
	for k, s := range t.slots {
		if s.folded == 0 && now.Sub(s.sent) >= t.every {
			delete(t.slots, k)
		}
	}
	if len(t.slots) < maxSlots {
		return
	}
	keys := make([]slotKey, 0, len(t.slots))
	for k := range t.slots {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b slotKey) int { return t.slots[a].sent.Compare(t.slots[b].sent) })
	for _, k := range keys[:len(keys)/4+1] {
		delete(t.slots, k)
	}
}

// withCount appends the number of notifications folded into n.
func withCount(n Notification, folded int) Notification {
	if folded > 0 {
		n.Message = fmt.Sprintf("%s (and %d more like this)", n.Message, folded)
	}
	return n
}
