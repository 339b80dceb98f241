package keystoretest

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

func TestStartSecretService(t *testing.T) {
	home := os.Getenv("HOME")
	var s *SecretService
	t.Run("running", func(t *testing.T) {
		s = StartSecretService(t)
		if got := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); got != s.Address {
			t.Errorf("DBUS_SESSION_BUS_ADDRESS = %q, want %q", got, s.Address)
		}
		if got, want := os.Getenv("XDG_DATA_HOME"), s.Dir+"/data"; got != want {
			t.Errorf("XDG_DATA_HOME = %q, want %q", got, want)
		}
		if _, found, err := s.Lookup(map[string]string{"service": "keystoretest"}); err != nil || found {
			t.Fatalf("Lookup in a new keyring = %v, %v; want nothing", found, err)
		}
		if err := s.Lock(); err != nil {
			t.Fatalf("Lock: %v", err)
		}
		if err := s.Unlock(); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
	})
	if s == nil {
		return
	}
	if s.keyring.ProcessState == nil || s.bus.cmd.ProcessState == nil {
		t.Errorf("daemons still running after the test")
	}
	if _, err := os.Stat(s.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there: %v", s.Dir, err)
	}
	if got := os.Getenv("HOME"); got != home {
		t.Errorf("HOME = %q after the test, want %q", got, home)
	}
}

func TestStartWithoutPrograms(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := Start(); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("Start() = %v, want ErrNotInstalled", err)
	}
	if _, err := StartBus(t.TempDir()); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("StartBus() = %v, want ErrNotInstalled", err)
	}

	tests := []struct {
		ci   string
		want string
	}{
		{"", "skip"},
		{"true", "fatal"},
	}
	for _, tt := range tests {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			for name, start := range map[string]func(testing.TB){
				"StartSecretService": func(tb testing.TB) { StartSecretService(tb) },
				"MustStartBus":       func(tb testing.TB) { MustStartBus(tb) },
			} {
				tb := &stoppingTB{TB: t}
				func() {
					defer func() { _ = recover() }()
					start(tb)
				}()
				if got := tb.how; got != tt.want {
					t.Errorf("%s stopped the test with %q, want %q", name, got, tt.want)
				}
				if !errors.Is(tb.err, ErrNotInstalled) {
					t.Errorf("%s gave %v, want ErrNotInstalled", name, tb.err)
				}
			}
		})
	}
}

// stoppingTB records how a helper stops a test, instead of stopping it.
type stoppingTB struct {
	testing.TB
	how string
	err error
}

func (tb *stoppingTB) Helper() {}

func (tb *stoppingTB) Skip(args ...any) { tb.stop("skip", args) }

func (tb *stoppingTB) Fatal(args ...any) { tb.stop("fatal", args) }

func (tb *stoppingTB) stop(how string, args []any) {
	tb.how = how
	if len(args) == 1 {
		tb.err, _ = args[0].(error)
	}
	panic(fmt.Sprint(args...))
}
