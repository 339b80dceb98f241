package keystore

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"
)

func TestTranslate(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error // nil: neither NotFound, Unavailable nor Locked
		msg  string
	}{
		{"nil", nil, nil, ""},
		{"not found", keyring.ErrNotFound, ErrNotFound, `nothing is stored in the keychain for "acct"`},
		{"no secret service", dbus.Error{Name: "org.freedesktop.DBus.Error.ServiceUnknown", Body: []any{"The name org.freedesktop.secrets was not provided by any .service files"}}, ErrUnavailable, ErrUnavailable.Error()},
		{"pointer D-Bus error", &dbus.Error{Name: "org.freedesktop.DBus.Error.NameHasNoOwner"}, ErrUnavailable, ErrUnavailable.Error()},
		{"activation failed", dbus.Error{Name: "org.freedesktop.DBus.Error.Spawn.ChildExited"}, ErrUnavailable, ErrUnavailable.Error()},
		{"wrapped D-Bus error", fmt.Errorf("call: %w", dbus.Error{Name: "org.freedesktop.DBus.Error.ServiceUnknown"}), ErrUnavailable, ErrUnavailable.Error()},
		{"unknown", errors.New("disk on fire"), nil, "the keychain failed: disk on fire"},
		{"connection closed", dbus.ErrClosed, ErrUnavailable, ErrUnavailable.Error()},
		{"connection lost", io.EOF, ErrUnavailable, ErrUnavailable.Error()},
		{"unsupported platform", keyring.ErrUnsupportedPlatform, ErrUnavailable, ErrUnavailable.Error()},
		{"locked item", dbus.Error{Name: "org.freedesktop.Secret.Error.IsLocked"}, ErrLocked, ErrLocked.Error()},
		{"prompt dismissed", errors.New("failed to unlock correct collection '/org/freedesktop/secrets/aliases/default'"), ErrLocked, ErrLocked.Error()},
		{"no default collection", dbus.Error{Name: "org.freedesktop.Secret.Error.NoSuchObject", Body: []any{"The collection does not exist"}}, ErrUnavailable, `the keychain has no default collection: create a default keyring (for example in Seahorse, "Passwords and Keys") and try again`},
		{"other D-Bus error", dbus.Error{Name: "org.example.Weird", Body: []any{"something odd"}}, nil, "the keychain failed: something odd"},
		{"already translated", &sentenceError{msg: "kept", kind: ErrLocked}, ErrLocked, "kept"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := translate("acct", tt.err)
			if got, want := err == nil, tt.err == nil; got != want {
				t.Fatalf("translate(%v) = %v", tt.err, err)
			}
			if err == nil {
				return
			}
			if got, want := err.Error(), tt.msg; got != want {
				t.Errorf("message = %q, want %q", got, want)
			}
			for _, sentinel := range []error{ErrNotFound, ErrUnavailable, ErrLocked} {
				if got, want := errors.Is(err, sentinel), sentinel == tt.want; got != want {
					t.Errorf("errors.Is(err, %q) = %v, want %v", sentinel, got, want)
				}
			}
			var want, got dbus.Error
			switch {
			case tt.err == keyring.ErrNotFound:
			case errors.As(tt.err, &want):
				// dbus.Error holds a slice, so errors.Is cannot compare it.
				if !errors.As(err, &got) || got.Name != want.Name {
					t.Errorf("cause %v is not kept for errors.As", tt.err)
				}
			case !errors.Is(err, tt.err):
				t.Errorf("cause %v is not kept for errors.Is", tt.err)
			}
		})
	}
}

func TestKeyringPanicBecomesError(t *testing.T) {
	k := &Keyring{}
	err := k.do(func() error { panic("interface conversion") })
	if err == nil {
		t.Fatal("do() = nil, want an error")
	}
}
