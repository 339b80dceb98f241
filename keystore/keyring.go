package keystore

import (
	"errors"
	"fmt"
	"time"

	"github.com/zalando/go-keyring"
)

// DefaultTimeout is how long a [Keyring] waits for the keychain when its
// Timeout is zero. It is long because the keychain may be showing the user a
// dialog to unlock it.
const DefaultTimeout = 2 * time.Minute

// Keyring is the [Store] backed by the operating system's keychain through
// github.com/zalando/go-keyring: the Secret Service (gnome-keyring, KWallet)
// on Linux and the BSDs, the login keychain on macOS and the Credential
// Manager on Windows. Entries are stored under [Service]. The zero value is
// ready to use.
//
// On Linux the Secret Service is reached over the D-Bus session bus named by
// DBUS_SESSION_BUS_ADDRESS. The connection is shared by the whole process and
// made on first use, so that variable must be set before then.
type Keyring struct {
	// Timeout bounds each call; zero means DefaultTimeout. A call that
	// times out is abandoned, not cancelled: the keychain may still carry
	// it out later.
	Timeout time.Duration
}

var _ Store = (*Keyring)(nil)

// Get implements [Store].
func (k *Keyring) Get(account string) (string, error) {
	var secret string
	err := k.do(func() error {
		var err error
		secret, err = keyring.Get(Service, account)
		return err
	})
	if err != nil {
		return "", translate(account, err)
	}
	return secret, nil
}

// Set implements [Store].
func (k *Keyring) Set(account, secret string) error {
	err := k.do(func() error { return keyring.Set(Service, account, secret) })
	return translate(account, err)
}

// Delete implements [Store].
func (k *Keyring) Delete(account string) error {
	err := k.do(func() error { return keyring.Delete(Service, account) })
	return translate(account, err)
}

// Check implements [Store]. It never asks the user to unlock the keychain:
// a locked keychain is reported as ErrLocked.
func (k *Keyring) Check() error {
	return translate("", k.do(check))
}

func (k *Keyring) timeout() time.Duration {
	if k == nil || k.Timeout <= 0 {
		return DefaultTimeout
	}
	return k.Timeout
}

// do runs f with a time limit, and turns a panic inside go-keyring or godbus
// (both trust the shape of the keychain's replies) into an error.
func (k *Keyring) do(f func() error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- &sentenceError{msg: fmt.Sprintf("the keychain gave an answer keycap does not understand (%v)", r)}
			}
		}()
		if err := connect(); err != nil {
			done <- err
			return
		}
		done <- f()
	}()
	timer := time.NewTimer(k.timeout())
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return &sentenceError{
			msg:  fmt.Sprintf("the keychain did not answer within %v: if it asked to be unlocked, unlock it and try again", k.timeout()),
			kind: ErrUnavailable,
		}
	}
}

// translate turns what go-keyring and D-Bus report into errors matching
// ErrNotFound, ErrUnavailable or ErrLocked with a sentence saying what to do.
func translate(account string, err error) error {
	var se *sentenceError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return err
	case errors.Is(err, keyring.ErrNotFound):
		return notFound(account)
	case errors.Is(err, keyring.ErrUnsupportedPlatform):
		return &sentenceError{msg: ErrUnavailable.Error(), kind: ErrUnavailable, cause: err}
	}
	if t := translatePlatform(err); t != nil {
		return t
	}
	return &sentenceError{msg: "the keychain failed: " + err.Error(), cause: err}
}
