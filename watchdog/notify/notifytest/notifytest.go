// Package notifytest runs a real D-Bus session bus of its own (dbus-daemon)
// with a stand-in desktop notification service on it, which records the
// Notify calls it receives, for tests of code that sends desktop
// notifications.
//
// godbus shares one session bus connection per process and beeep uses it,
// so the bus must be started before anything touches the session bus: call
// [Main] from TestMain and [Require] from the tests that need it.
//
// When dbus-daemon is not installed the tests are skipped, with a message
// to run `make test`, which installs it; when the CI environment variable
// is set they fail instead.
package notifytest

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/keycap/keycap/keystore/keystoretest"
)

// ErrNotInstalled is returned by StartBus when dbus-daemon cannot be found.
var ErrNotInstalled = errors.New("dbus-daemon is needed for the tests against a real notification service: run `make test`, which installs it (apt-get install dbus)")

const (
	// Name, Path and Interface are where the notification service lives.
	Name      = "org.freedesktop.Notifications"
	Path      = dbus.ObjectPath("/org/freedesktop/Notifications")
	Interface = "org.freedesktop.Notifications"

	tempPrefix = "keycap-notify-"
)

// Bus is a private D-Bus session bus, the same kind the keychain tests
// use: nothing is started on it by activation, so the notification daemons
// a desktop distribution ships cannot start on it.
type Bus struct {
	*keystoretest.Bus
	dir string
}

// StartBus starts dbus-daemon with its socket in a new temporary directory.
func StartBus() (*Bus, error) {
	// Short, so the socket path stays under the 108-byte limit.
	dir, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	kb, err := keystoretest.StartBus(dir)
	if err != nil {
		os.RemoveAll(dir)
		if errors.Is(err, keystoretest.ErrNotInstalled) {
			return nil, ErrNotInstalled
		}
		return nil, err
	}
	return &Bus{Bus: kb, dir: dir}, nil
}

// Close stops the bus and removes its directory.
func (b *Bus) Close() {
	b.Bus.Close()
	os.RemoveAll(b.dir)
}

var (
	mainBus    *Bus
	mainErr    error
	mainCalled bool
)

// Main starts a private session bus, points DBUS_SESSION_BUS_ADDRESS at it,
// runs the tests and stops it. Call it from TestMain, before anything
// touches the session bus:
//
//	func TestMain(m *testing.M) { os.Exit(notifytest.Main(m)) }
//
// If dbus-daemon is missing, the tests calling [Require] are skipped, or
// the whole run fails when CI is set; any other failure to start fails the
// run.
func Main(m *testing.M) int {
	mainCalled = true
	b, err := StartBus()
	switch {
	case err == nil:
		mainBus = b
		defer b.Close()
		old, had := os.LookupEnv("DBUS_SESSION_BUS_ADDRESS")
		os.Setenv("DBUS_SESSION_BUS_ADDRESS", b.Address)
		defer func() {
			if had {
				os.Setenv("DBUS_SESSION_BUS_ADDRESS", old)
			} else {
				os.Unsetenv("DBUS_SESSION_BUS_ADDRESS")
			}
		}()
	case errors.Is(err, ErrNotInstalled) && os.Getenv("CI") == "":
		mainErr = err
	default:
		fmt.Fprintf(os.Stderr, "notifytest: %v\n", err)
		return 1
	}
	return m.Run()
}

// Require returns the bus [Main] started, and skips the test when Main
// found dbus-daemon missing.
func Require(tb testing.TB) *Bus {
	tb.Helper()
	if !mainCalled {
		tb.Fatal("notifytest.Require needs notifytest.Main to be called from TestMain")
	}
	if mainErr != nil {
		tb.Skip(mainErr)
	}
	return mainBus
}

// Call is one Notify call the service received.
type Call struct {
	AppName       string
	ReplacesID    uint32
	AppIcon       string
	Summary       string
	Body          string
	Actions       []string
	Hints         map[string]dbus.Variant
	ExpireTimeout int32
}

// Urgency returns the urgency hint: 0 low, 1 normal, 2 critical; ok is
// false when the hint is missing or not a byte.
func (c Call) Urgency() (u byte, ok bool) {
	v, found := c.Hints["urgency"]
	if !found {
		return 0, false
	}
	u, ok = v.Value().(byte)
	return u, ok
}

// Server is a stand-in notification service owning
// org.freedesktop.Notifications on a bus.
type Server struct {
	conn   *dbus.Conn
	mu     sync.Mutex
	calls  []Call
	nextID uint32
	wake   chan struct{}
}

// Serve connects to the bus, takes the name org.freedesktop.Notifications
// and records the Notify calls it receives, until the test ends.
func Serve(tb testing.TB, b *Bus) *Server {
	tb.Helper()
	conn, err := dbus.Connect(b.Address)
	if err != nil {
		tb.Fatalf("connect to the test bus: %v", err)
	}
	s := &Server{conn: conn, wake: make(chan struct{}, 1)}
	if err := conn.Export(service{s}, Path, Interface); err != nil {
		conn.Close()
		tb.Fatalf("export the notification service: %v", err)
	}
	reply, err := conn.RequestName(Name, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		conn.Close()
		tb.Fatalf("own %s: reply %v, %v", Name, reply, err)
	}
	tb.Cleanup(func() {
		_, _ = conn.ReleaseName(Name)
		conn.Close()
	})
	return s
}

// Calls returns the Notify calls received so far, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Wait returns the Notify calls once there are at least n, failing the
// test after 10 seconds.
func (s *Server) Wait(tb testing.TB, n int) []Call {
	tb.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if c := s.Calls(); len(c) >= n {
			return c
		}
		select {
		case <-s.wake:
		case <-deadline:
			tb.Fatalf("notification service got %d Notify calls, want %d", len(s.Calls()), n)
		}
	}
}

// service holds the D-Bus methods, kept off Server's own method set.
type service struct{ s *Server }

// Notify is org.freedesktop.Notifications.Notify.
func (v service) Notify(appName string, replacesID uint32, appIcon, summary, body string, actions []string, hints map[string]dbus.Variant, expireTimeout int32) (uint32, *dbus.Error) {
	s := v.s
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	s.calls = append(s.calls, Call{appName, replacesID, appIcon, summary, body, actions, hints, expireTimeout})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return id, nil
}

// GetCapabilities is org.freedesktop.Notifications.GetCapabilities.
func (service) GetCapabilities() ([]string, *dbus.Error) {
	return []string{"body", "body-markup"}, nil
}

// GetServerInformation is
// org.freedesktop.Notifications.GetServerInformation.
func (service) GetServerInformation() (name, vendor, version, specVersion string, err *dbus.Error) {
	return "notifytest", "keycap", "1", "1.2", nil
}

// CloseNotification is org.freedesktop.Notifications.CloseNotification.
func (service) CloseNotification(id uint32) *dbus.Error { return nil }
