package notify_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/notify"
	"github.com/keycap/keycap/watchdog/notify/notifytest"
)

func TestBeeepReachesNotificationService(t *testing.T) {
	srv := notifytest.Serve(t, notifytest.Require(t))
	tests := []struct {
		name        string
		n           notify.Notification
		wantBody    string
		wantUrgency byte
		wantSound   bool
	}{
		{
			name: "normal",
			n: notify.Notification{Kind: "loop_blocked", Label: "day5.py",
				Title:   `keycap blocked a loop in "day5.py"`,
				Message: `"day5.py" sent the same tts-1 speech request 5 times in 4 min; keycap let 4 through (up to $0.31) and now refuses it`},
			wantBody:    `"day5.py" sent the same tts-1 speech request 5 times in 4 min; keycap let 4 through (up to $0.31) and now refuses it`,
			wantUrgency: 1,
		},
		{
			name: "critical",
			n: notify.Notification{Kind: "threshold", Label: "day5.py", Critical: true,
				Title:   "keycap: daily cap reached",
				Message: "today's $10.00 cap is reached; raise it with `keycap cap <dollars>` & only if you must"},
			// Markup is escaped: servers may parse the body as markup.
			wantBody:    "today's $10.00 cap is reached; raise it with `keycap cap &lt;dollars&gt;` &amp; only if you must",
			wantUrgency: 2,
			wantSound:   true,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := (&notify.Beeep{}).Notify(tt.n); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			c := srv.Wait(t, i+1)[i]
			if got, want := c.AppName, "keycap"; got != want {
				t.Errorf("app name = %q, want %q", got, want)
			}
			if got, want := c.Summary, tt.n.Title; got != want {
				t.Errorf("summary = %q, want %q", got, want)
			}
			if got, want := c.Body, tt.wantBody; got != want {
				t.Errorf("body = %q, want %q", got, want)
			}
			if u, ok := c.Urgency(); !ok || u != tt.wantUrgency {
				t.Errorf("urgency = %d (present %v), want %d", u, ok, tt.wantUrgency)
			}
			if _, got := c.Hints["sound-name"]; got != tt.wantSound {
				t.Errorf("sound-name hint present = %v, want %v", got, tt.wantSound)
			}
			if c.ExpireTimeout <= 0 {
				t.Errorf("expire timeout = %d, want a positive timeout", c.ExpireTimeout)
			}
		})
	}
}

func TestBeeepIcon(t *testing.T) {
	srv := notifytest.Serve(t, notifytest.Require(t))
	icon := filepath.Join(t.TempDir(), "keycap.png")
	b := &notify.Beeep{AppName: "keycap-test", Icon: icon}
	if err := b.Notify(notify.Notification{Kind: "threshold", Message: "50%"}); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	c := srv.Wait(t, 1)[0]
	if c.AppName != "keycap-test" || c.AppIcon != icon || c.Summary != "keycap" {
		t.Fatalf("app name, icon, summary = %q, %q, %q; want keycap-test, %q, keycap", c.AppName, c.AppIcon, c.Summary, icon)
	}
}

// TestLoopNotifiedOnceThroughChain sends a burst through the chain the
// engine uses and checks that the service sees one pop-up, then one that
// tells the rest.
func TestLoopNotifiedOnceThroughChain(t *testing.T) {
	srv := notifytest.Serve(t, notifytest.Require(t))
	clock := newClock()
	q := notify.NewQueue(&notify.Beeep{}, 8)
	th := notify.NewThrottle(q, time.Minute)
	th.Now = clock.Now
	n := notify.Notification{Kind: "loop_warning", Label: "day5.py", Title: "keycap: loop", Message: "same request again"}
	for range 5 {
		if err := th.Notify(n); err != nil {
			t.Fatalf("Notify: %v", err)
		}
	}
	clock.Add(time.Minute)
	if err := th.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := q.Err(); err != nil {
		t.Fatalf("delivery: %v", err)
	}
	calls := srv.Wait(t, 2)
	if got := len(calls); got != 2 {
		t.Fatalf("service got %d notifications, want 2", got)
	}
	if got, want := calls[0].Body, "same request again"; got != want {
		t.Errorf("first body = %q, want %q", got, want)
	}
	if got, want := calls[1].Body, "same request again (and 3 more like this)"; got != want {
		t.Errorf("flushed body = %q, want %q", got, want)
	}
}

func TestProbe(t *testing.T) {
	bus := notifytest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := notify.Probe(ctx); !errors.Is(err, notify.ErrUnavailable) {
		t.Fatalf("Probe with no service = %v, want ErrUnavailable", err)
	}
	if notify.Available() {
		t.Fatal("Available with no service = true")
	}

	notifytest.Serve(t, bus)
	if err := notify.Probe(ctx); err != nil {
		t.Fatalf("Probe with a service = %v, want nil", err)
	}
	if !notify.Available() {
		t.Fatal("Available with a service = false")
	}
}

func TestProbeWithoutBus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.Run("bus gone", func(t *testing.T) {
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "none"))
		if err := notify.Probe(ctx); !errors.Is(err, notify.ErrUnavailable) {
			t.Fatalf("Probe = %v, want ErrUnavailable", err)
		}
	})
	t.Run("no address", func(t *testing.T) {
		// godbus would find a desktop session's bus here.
		run := fmt.Sprintf("/run/user/%d/", os.Getuid())
		for _, f := range []string{"bus", "dbus-session"} {
			if _, err := os.Stat(run + f); err == nil {
				t.Skipf("%s%s exists: this machine has a session bus to find", run, f)
			}
		}
		// Nothing to find, and nothing may be launched (dbus-launch).
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
		if err := notify.Probe(ctx); !errors.Is(err, notify.ErrUnavailable) {
			t.Fatalf("Probe = %v, want ErrUnavailable", err)
		}
	})
}
