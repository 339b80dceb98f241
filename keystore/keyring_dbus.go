//go:build !darwin && !windows

package keystore

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// The Secret Service names that go-keyring uses as well.
const (
	secretsName       = "org.freedesktop.secrets"
	secretsPath       = dbus.ObjectPath("/org/freedesktop/secrets")
	loginCollection   = dbus.ObjectPath("/org/freedesktop/secrets/collection/login")
	defaultCollection = dbus.ObjectPath("/org/freedesktop/secrets/aliases/default")
	checkTimeout      = 10 * time.Second
	propertiesGet     = "org.freedesktop.DBus.Properties.Get"
	serviceInterface  = "org.freedesktop.Secret.Service"
	collectionIface   = "org.freedesktop.Secret.Collection"
)

// connect makes sure the process-wide session bus connection, which
// go-keyring uses, can be had.
func connect() error {
	if _, err := dbus.SessionBus(); err != nil {
		return &sentenceError{msg: ErrUnavailable.Error(), kind: ErrUnavailable, cause: err}
	}
	return nil
}

// check asks the Secret Service which collection go-keyring would use and
// whether it is locked, without triggering an unlock prompt.
func check() error {
	conn, err := dbus.SessionBus()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()

	var collections []dbus.ObjectPath
	service := conn.Object(secretsName, secretsPath)
	if err := service.CallWithContext(ctx, propertiesGet, 0, serviceInterface, "Collections").Store(&collections); err != nil {
		return err
	}
	// Same choice as go-keyring's GetLoginCollection.
	path := defaultCollection
	if slices.Contains(collections, loginCollection) {
		path = loginCollection
	}
	var locked bool
	err = conn.Object(secretsName, path).CallWithContext(ctx, propertiesGet, 0, collectionIface, "Locked").Store(&locked)
	if err != nil {
		if isDBusError(err, "org.freedesktop.Secret.Error.NoSuchObject", "org.freedesktop.DBus.Error.UnknownObject", "org.freedesktop.DBus.Error.UnknownMethod") {
			return noDefaultCollection(err)
		}
		return err
	}
	if locked {
		return &sentenceError{msg: ErrLocked.Error(), kind: ErrLocked}
	}
	return nil
}

func noDefaultCollection(cause error) error {
	return &sentenceError{
		msg:   `the keychain has no default collection: create a default keyring (for example in Seahorse, "Passwords and Keys") and try again`,
		kind:  ErrUnavailable,
		cause: cause,
	}
}

func isDBusError(err error, names ...string) bool {
	var e dbus.Error
	var pe *dbus.Error
	switch {
	case errors.As(err, &e):
	case errors.As(err, &pe) && pe != nil:
		e = *pe
	default:
		return false
	}
	for _, name := range names {
		if e.Name == name || strings.HasSuffix(name, ".") && strings.HasPrefix(e.Name, name) {
			return true
		}
	}
	return false
}

func translatePlatform(err error) error {
	switch {
	case isDBusError(err,
		"org.freedesktop.DBus.Error.ServiceUnknown",
		"org.freedesktop.DBus.Error.NameHasNoOwner",
		"org.freedesktop.DBus.Error.NoServer",
		"org.freedesktop.DBus.Error.Disconnected",
		"org.freedesktop.DBus.Error.Spawn."):
		return &sentenceError{msg: ErrUnavailable.Error(), kind: ErrUnavailable, cause: err}
	case isDBusError(err, "org.freedesktop.Secret.Error.IsLocked"),
		// go-keyring's wording when the unlock prompt was dismissed or
		// could not be shown.
		strings.HasPrefix(err.Error(), "failed to unlock correct collection"):
		return &sentenceError{msg: ErrLocked.Error(), kind: ErrLocked, cause: err}
	case isDBusError(err, "org.freedesktop.Secret.Error.NoSuchObject"):
		return noDefaultCollection(err)
	case errors.Is(err, dbus.ErrClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &sentenceError{msg: ErrUnavailable.Error(), kind: ErrUnavailable, cause: err}
	}
	return nil
}
