package notify

import (
	"context"
	"errors"
	"time"
)

// ErrUnavailable is matched (errors.Is) by Probe's errors: no notification
// service is reachable, so notifications are off.
var ErrUnavailable = errors.New("no desktop notification service")

// probeTimeout bounds Available.
const probeTimeout = 2 * time.Second

// Available reports whether a notification service is reachable, so that
// `keycap status` can say when notifications are off.
func Available() bool {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	return Probe(ctx) == nil
}
