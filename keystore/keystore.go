// Package keystore keeps keycap's OpenAI keys in the operating system's
// keychain and nowhere else.
//
// A [Store] is the keychain behind four methods; [Keyring] is the real one
// (the Secret Service on Linux, through go-keyring) and [Memory] stands in for
// it in tests. [Keys] is what the CLI and the engine use: it validates keys
// before storing them, records when they were stored and hands them out as
// [Key] values that never print in full.
package keystore

import (
	"errors"
	"fmt"
	"sync"
)

// Service is the service name keycap's entries are stored under.
const Service = "keycap"

// Account names of the entries keycap stores under [Service].
const (
	APIKeyAccount   = "openai-api-key"
	AdminKeyAccount = "openai-admin-key"
)

// Store is the OS keychain behind four methods. Secrets are addressed by
// account name within [Service].
type Store interface {
	// Get returns the secret stored for account, or an error matching
	// ErrNotFound when there is none.
	Get(account string) (string, error)
	// Set stores secret for account, replacing any previous one.
	Set(account, secret string) error
	// Delete removes the secret stored for account, or returns an error
	// matching ErrNotFound when there is none.
	Delete(account string) error
	// Check returns nil when the keychain is reachable and unlocked, and an
	// error matching ErrUnavailable or ErrLocked when it is not.
	Check() error
}

// Errors returned by keystore, to be matched with errors.Is. Errors that
// match ErrUnavailable or ErrLocked say what went wrong with the keychain
// itself; their text is a sentence telling the user what to do.
var (
	// ErrNotFound means the keychain works but holds no such entry.
	ErrNotFound = errors.New("not found in the keychain")
	// ErrUnavailable means there is no keychain to talk to.
	ErrUnavailable = errors.New("no keychain is available: keycap keeps the API key in the system keychain (Secret Service); install and start gnome-keyring or KWallet, or log in to a desktop session")
	// ErrLocked means the keychain is there but locked, or the user
	// dismissed the request to unlock it.
	ErrLocked = errors.New("the keychain is locked: unlock it (for example by logging in to your desktop) and try again")
	// ErrInvalidKey means a key was refused before storing because it does
	// not have the shape of an OpenAI key.
	ErrInvalidKey = errors.New("that does not look like an OpenAI key")
)

// sentenceError is an error whose text is a finished sentence for the user,
// matching a sentinel (kind) and keeping the underlying cause for errors.As.
type sentenceError struct {
	msg   string
	kind  error
	cause error
}

func (e *sentenceError) Error() string { return e.msg }

func (e *sentenceError) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.kind, e.cause} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func notFound(account string) error {
	return &sentenceError{msg: fmt.Sprintf("nothing is stored in the keychain for %q", account), kind: ErrNotFound}
}

// Memory is a [Store] kept in memory, for tests. The zero value is an empty,
// working keychain; it is safe for concurrent use.
type Memory struct {
	mu      sync.Mutex
	secrets map[string]string
	err     error
}

var _ Store = (*Memory)(nil)

// Fail makes every later call fail with err, as an unavailable or locked
// keychain would (for example Fail(ErrLocked)); Fail(nil) heals it.
func (m *Memory) Fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.err = err
}

// Get implements [Store].
func (m *Memory) Get(account string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return "", m.err
	}
	secret, ok := m.secrets[account]
	if !ok {
		return "", notFound(account)
	}
	return secret, nil
}

// Set implements [Store].
func (m *Memory) Set(account, secret string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if m.secrets == nil {
		m.secrets = make(map[string]string)
	}
	m.secrets[account] = secret
	return nil
}

// Delete implements [Store].
func (m *Memory) Delete(account string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if _, ok := m.secrets[account]; !ok {
		return notFound(account)
	}
	delete(m.secrets, account)
	return nil
}

// Check implements [Store].
func (m *Memory) Check() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}
