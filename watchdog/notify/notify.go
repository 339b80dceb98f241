// Package notify tells a person at the desktop what keycap noticed and did.
// Notifier is the interface the engine uses; Beeep delivers through the
// desktop's notification service, Recorder keeps notifications for tests,
// Throttle folds repeats so a loop cannot turn into a flood of pop-ups, and
// Queue delivers in the background so a slow notification service never
// holds up a request. Probe says whether a notification service is there
// at all.
//
// The usual chain is NewThrottle(NewQueue(&Beeep{}, 64), time.Minute).
package notify

import (
	"slices"
	"sync"
)

// Notification is one thing to tell a person.
type Notification struct {
	// Kind says what happened ("loop_blocked", "threshold", …); with Label
	// it is what Throttle folds repeats by.
	Kind string
	// Label is the script concerned, if any.
	Label string
	// Title is the headline; Message the one line to act on.
	Title   string
	Message string
	// Critical asks for an urgent notification with a sound.
	Critical bool
}

// Notifier delivers notifications.
type Notifier interface {
	Notify(n Notification) error
}

var (
	_ Notifier = (*Beeep)(nil)
	_ Notifier = (*Recorder)(nil)
	_ Notifier = (*Throttle)(nil)
	_ Notifier = (*Queue)(nil)
	_ Notifier = Discard{}
)

// Discard drops every notification, for when notifications are turned off.
type Discard struct{}

// Notify does nothing.
func (Discard) Notify(Notification) error { return nil }

// Recorder keeps the notifications it is given, for tests. The zero value
// is ready to use.
type Recorder struct {
	// Err, when set, is returned by Notify after recording.
	Err error

	mu   sync.Mutex
	list []Notification
}

// Notify records n.
func (r *Recorder) Notify(n Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, n)
	return r.Err
}

// Notifications returns what has been recorded, oldest first.
func (r *Recorder) Notifications() []Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.list)
}

// Reset forgets what has been recorded.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = nil
}
