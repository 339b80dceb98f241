package notify

import (
	"context"
	"errors"
	"sync"
)

// ErrQueueFull is returned by Queue.Notify when the backlog is full; the
// notification is dropped.
var ErrQueueFull = errors.New("notification queue full: notification dropped")

// ErrClosed is returned by Queue.Notify after Close.
var ErrClosed = errors.New("notification queue closed")

// Queue delivers notifications to another Notifier on a goroutine of its
// own, so that Notify never waits for the notification service. Create it
// with NewQueue and stop it with Close.
type Queue struct {
	next Notifier
	ch   chan Notification
	done chan struct{}

	mu      sync.Mutex
	closed  bool
	err     error
	dropped int
}

// NewQueue starts delivering to next, holding at most size notifications
// (16 if size is not positive) while next is busy.
func NewQueue(next Notifier, size int) *Queue {
	if size <= 0 {
		size = 16
	}
	q := &Queue{next: next, ch: make(chan Notification, size), done: make(chan struct{})}
	go q.run()
	return q
}

func (q *Queue) run() {
	defer close(q.done)
	for n := range q.ch {
		err := q.next.Notify(n)
		q.mu.Lock()
		q.err = err
		q.mu.Unlock()
	}
}

// Notify queues n for delivery and returns at once.
func (q *Queue) Notify(n Notification) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	select {
	case q.ch <- n:
		return nil
	default:
		q.dropped++
		return ErrQueueFull
	}
}

// Err returns the error of the latest delivery, nil if it succeeded.
func (q *Queue) Err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

// Dropped returns how many notifications were dropped because the backlog
// was full.
func (q *Queue) Dropped() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// Close stops taking notifications and waits until those queued are
// delivered or ctx is done. It is safe to call more than once.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
