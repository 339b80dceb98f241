package notify_test

import (
	"fmt"
	"time"

	"github.com/keycap/keycap/watchdog/notify"
)

// A loop's warnings, five in half a minute, make one pop-up; the next one
// a minute later says how many were folded.
func ExampleThrottle() {
	rec := &notify.Recorder{}
	th := notify.NewThrottle(rec, time.Minute)
	now := time.Date(2025, 4, 23, 14, 0, 0, 0, time.UTC)
	th.Now = func() time.Time { return now }
	for range 5 {
		_ = th.Notify(notify.Notification{Kind: "retry_storm", Label: "day5.py", Message: "day5.py keeps retrying"})
		now = now.Add(6 * time.Second)
	}
	now = now.Add(time.Minute)
	_ = th.Notify(notify.Notification{Kind: "retry_storm", Label: "day5.py", Message: "day5.py keeps retrying"})
	for _, n := range rec.Notifications() {
		fmt.Println(n.Message)
	}
	// Output:
	// day5.py keeps retrying
	// day5.py keeps retrying (and 4 more like this)
}
