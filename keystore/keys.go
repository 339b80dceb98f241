package keystore

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on the length of a key accepted by [ParseAPIKey] and
// [ParseAdminKey]. Legacy OpenAI keys have 51 characters, project and admin
// keys well over 100.
const (
	minKeyLen = 40
	maxKeyLen = 1024
)

// storedAtSuffix names the entry next to a key's that holds when it was
// stored.
const storedAtSuffix = ".stored-at"

// Keys stores and reads keycap's two OpenAI keys in a [Store].
//
// Each key is kept as the bare key under its account ([APIKeyAccount] or
// [AdminKeyAccount]), so other tools (secret-tool, Seahorse) show it as it
// is, and the time it was stored is kept as RFC 3339 text under the same
// account name followed by ".stored-at".
type Keys struct {
	// Store is where the keys are kept: a *Keyring, or a *Memory in tests.
	Store Store
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Key is a key read from the keychain. Printing it, with fmt or log/slog,
// shows only its redacted form.
type Key struct {
	Value string
	// StoredAt is when the key was stored; zero when unknown.
	StoredAt time.Time
}

// Redacted returns the key in the form [Redact] gives.
func (k Key) Redacted() string { return Redact(k.Value) }

// String returns the redacted key.
func (k Key) String() string { return k.Redacted() }

// GoString returns the redacted key, so %#v does not show it either.
func (k Key) GoString() string { return "keystore.Key(" + k.Redacted() + ")" }

// Format prints the redacted key for every verb, so that no verb (%d, %x,
// %+v...) can reach the value through fmt's reflection.
func (k Key) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		fmt.Fprint(f, k.GoString())
	case verb == 'q':
		fmt.Fprintf(f, "%q", k.Redacted())
	default:
		fmt.Fprint(f, k.Redacted())
	}
}

// LogValue implements slog.LogValuer with the redacted key and when it was
// stored.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key", k.Redacted()), slog.Time("stored_at", k.StoredAt))
}

// MarshalText returns the redacted key, so encoders (JSON, TOML) do not
// write the value either.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.Redacted()), nil }

// Redact returns a form of key that is safe to show: "sk-…" and its last
// four characters, as in "sk-…abcd". Only the "sk-" prefix is kept, whatever
// follows it. Input too short to hide anything gives "sk-…" (or "…"), and
// empty input gives "(none)".
func Redact(key string) string {
	key = strings.TrimSpace(key)
	if key == "" {
		return "(none)"
	}
	prefix := ""
	if strings.HasPrefix(key, "sk-") {
		prefix = "sk-"
	}
	n := utf8.RuneCountInString(key)
	if n < 20 {
		return prefix + "…"
	}
	tail := []rune(key)[n-4:]
	return prefix + "…" + string(tail)
}

type slot struct {
	account string
	name    string
	parse   func(string) (string, error)
}

var (
	apiSlot   = slot{APIKeyAccount, "OpenAI API key", ParseAPIKey}
	adminSlot = slot{AdminKeyAccount, "OpenAI admin key", ParseAdminKey}
)

// SetAPIKey checks that key looks like an OpenAI API key (see
// [ParseAPIKey]) and stores it.
func (k *Keys) SetAPIKey(key string) error { return k.set(apiSlot, key) }

// APIKey returns the stored API key, or an error matching ErrNotFound.
func (k *Keys) APIKey() (Key, error) { return k.get(apiSlot) }

// DeleteAPIKey removes the stored API key, or returns an error matching
// ErrNotFound when there is none.
func (k *Keys) DeleteAPIKey() error { return k.delete(apiSlot) }

// SetAdminKey checks that key looks like an OpenAI admin key (see
// [ParseAdminKey]) and stores it.
func (k *Keys) SetAdminKey(key string) error { return k.set(adminSlot, key) }

// AdminKey returns the stored admin key, or an error matching ErrNotFound.
func (k *Keys) AdminKey() (Key, error) { return k.get(adminSlot) }

// DeleteAdminKey removes the stored admin key, or returns an error matching
// ErrNotFound when there is none.
func (k *Keys) DeleteAdminKey() error { return k.delete(adminSlot) }

func (k *Keys) now() time.Time {
	if k.Now == nil {
		return time.Now()
	}
	return k.Now()
}

func (k *Keys) set(s slot, key string) error {
	key, err := s.parse(key)
	if err != nil {
		return err
	}
	if err := k.Store.Set(s.account, key); err != nil {
		return fmt.Errorf("store the %s: %w", s.name, err)
	}
	at := k.now().UTC().Format(time.RFC3339)
	if err := k.Store.Set(s.account+storedAtSuffix, at); err != nil {
		return fmt.Errorf("record when the %s was stored: %w", s.name, err)
	}
	return nil
}

func (k *Keys) get(s slot) (Key, error) {
	value, err := k.Store.Get(s.account)
	if errors.Is(err, ErrNotFound) {
		return Key{}, &sentenceError{msg: fmt.Sprintf("no %s is stored in the keychain", s.name), kind: ErrNotFound}
	}
	if err != nil {
		return Key{}, fmt.Errorf("read the %s: %w", s.name, err)
	}
	key := Key{Value: value}
	// The date is a nicety: a missing or garbled one leaves StoredAt zero.
	if at, err := k.Store.Get(s.account + storedAtSuffix); err == nil {
		if t, err := time.Parse(time.RFC3339, at); err == nil {
			key.StoredAt = t
		}
	}
	return key, nil
}

func (k *Keys) delete(s slot) error {
	err := k.Store.Delete(s.account)
	if errors.Is(err, ErrNotFound) {
		return &sentenceError{msg: fmt.Sprintf("no %s is stored in the keychain", s.name), kind: ErrNotFound}
	}
	if err != nil {
		return fmt.Errorf("delete the %s: %w", s.name, err)
	}
	if err := k.Store.Delete(s.account + storedAtSuffix); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("delete when the %s was stored: %w", s.name, err)
	}
	return nil
}

// ParseAPIKey trims surrounding white space from s and checks that it looks
// like an OpenAI API key: "sk-" then letters, digits, '-' and '_', of a
// plausible length, and not an admin key. The error, which matches
// ErrInvalidKey, never contains s.
func ParseAPIKey(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", invalid("the API key is empty")
	case strings.HasPrefix(s, "sk-admin-"):
		return "", invalid("that is an OpenAI admin key (sk-admin-…), not an API key: store it as the admin key instead")
	case !strings.HasPrefix(s, "sk-"):
		return "", invalid("that does not look like an OpenAI API key: it should start with sk-")
	}
	if err := checkBody(s, "API key"); err != nil {
		return "", err
	}
	return s, nil
}

// ParseAdminKey trims surrounding white space from s and checks that it
// looks like an OpenAI admin key: "sk-admin-" then letters, digits, '-' and
// '_', of a plausible length. The error, which matches ErrInvalidKey, never
// contains s.
func ParseAdminKey(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", invalid("the admin key is empty")
	case strings.HasPrefix(s, "sk-admin-"):
	case strings.HasPrefix(s, "sk-"):
		return "", invalid("that is an OpenAI API key, not an admin key: admin keys start with sk-admin- (create one in the OpenAI dashboard under Organization settings, Admin keys)")
	default:
		return "", invalid("that does not look like an OpenAI admin key: it should start with sk-admin-")
	}
	if err := checkBody(s, "admin key"); err != nil {
		return "", err
	}
	return s, nil
}

func checkBody(s, name string) error {
	pos := 0
	for _, r := range s {
		pos++
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			continue
		}
		return invalid(fmt.Sprintf("that does not look like an OpenAI %s: it may contain only letters, digits, - and _, but character %d is %s", name, pos, describe(r)))
	}
	if n := len(s); n < minKeyLen {
		return invalid(fmt.Sprintf("that does not look like an OpenAI %s: it is too short (%d characters; OpenAI keys have at least %d)", name, n, minKeyLen))
	} else if n > maxKeyLen {
		return invalid(fmt.Sprintf("that does not look like an OpenAI %s: it is too long (%d characters; OpenAI keys have at most %d)", name, n, maxKeyLen))
	}
	return nil
}

// describe names a rejected character without quoting it: it may be part of
// someone's secret.
func describe(r rune) string {
	switch r {
	case ' ':
		return "a space"
	case '\t':
		return "a tab"
	case '\n', '\r':
		return "a line break (was more than one line pasted?)"
	case '"', '\'', '`':
		return "a quote (leave the quotes out)"
	}
	return "another character"
}

func invalid(msg string) error {
	return &sentenceError{msg: msg, kind: ErrInvalidKey}
}
