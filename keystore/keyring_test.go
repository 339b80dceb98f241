package keystore_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/keycap/keycap/keystore"
	"github.com/keycap/keycap/keystore/keystoretest"
)

// MustCleanKeyring returns a Keyring on the private Secret Service and
// deletes the given accounts before and after the test.
func MustCleanKeyring(tb testing.TB, accounts ...string) *keystore.Keyring {
	tb.Helper()
	keystoretest.Require(tb)
	k := &keystore.Keyring{Timeout: 10 * time.Second}
	clean := func() {
		for _, a := range accounts {
			if err := k.Delete(a); err != nil && !errors.Is(err, keystore.ErrNotFound) {
				tb.Fatalf("delete %s: %v", a, err)
			}
		}
	}
	clean()
	tb.Cleanup(clean)
	return k
}

func TestKeyringRoundTrip(t *testing.T) {
	ss := keystoretest.Require(t)
	k := MustCleanKeyring(t, "round-trip")

	if err := k.Check(); err != nil {
		t.Fatalf("Check() = %v, want nil", err)
	}
	if err := k.Set("round-trip", "s3cret"); err != nil {
		t.Fatalf("Set: %v", err)
	}
	got, err := k.Get("round-trip")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if want := "s3cret"; got != want {
		t.Fatalf("Get = %q, want %q", got, want)
	}

	// Another Secret Service client finds it under the documented names.
	got, found, err := ss.Lookup(map[string]string{"service": keystore.Service, "username": "round-trip"})
	if err != nil || !found {
		t.Fatalf("Lookup = %q, %v, %v; want the secret", got, found, err)
	}
	if want := "s3cret"; got != want {
		t.Fatalf("Lookup = %q, want %q", got, want)
	}

	if err := k.Delete("round-trip"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := k.Get("round-trip"); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
	}
}

// storeStep is one call on a Store and what it should give.
type storeStep struct {
	op      string // get, set, delete, check
	account string
	secret  string // for set; the wanted value for get
	wantErr error
}

var storeScript = []storeStep{
	{op: "check"},
	{op: "get", account: "parity-a", wantErr: keystore.ErrNotFound},
	{op: "delete", account: "parity-a", wantErr: keystore.ErrNotFound},
	{op: "set", account: "parity-a", secret: "first"},
	{op: "get", account: "parity-a", secret: "first"},
	{op: "set", account: "parity-a", secret: "second"},
	{op: "get", account: "parity-a", secret: "second"},
	{op: "get", account: "parity-b", wantErr: keystore.ErrNotFound},
	{op: "set", account: "parity-b", secret: ""},
	{op: "get", account: "parity-b", secret: ""},
	{op: "set", account: "parity-c", secret: "ünïcode ✓ with spaces\nand a newline"},
	{op: "get", account: "parity-c", secret: "ünïcode ✓ with spaces\nand a newline"},
	{op: "set", account: "parity-d", secret: strings.Repeat("x", 10000)},
	{op: "get", account: "parity-d", secret: strings.Repeat("x", 10000)},
	{op: "delete", account: "parity-a"},
	{op: "get", account: "parity-a", wantErr: keystore.ErrNotFound},
	{op: "get", account: "parity-b", secret: ""},
	{op: "delete", account: "parity-b"},
	{op: "delete", account: "parity-b", wantErr: keystore.ErrNotFound},
	{op: "check"},
}

// TestMemoryBehavesLikeKeyring runs one script against the real keychain and
// the in-memory one, and wants the same results, error texts included.
func TestMemoryBehavesLikeKeyring(t *testing.T) {
	stores := []struct {
		name  string
		store func(t *testing.T) keystore.Store
	}{
		{"Keyring", func(t *testing.T) keystore.Store {
			return MustCleanKeyring(t, "parity-a", "parity-b", "parity-c", "parity-d")
		}},
		{"Memory", func(t *testing.T) keystore.Store { return new(keystore.Memory) }},
	}
	results := make(map[string][]string)
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			store := s.store(t)
			for i, step := range storeScript {
				var got string
				var err error
				switch step.op {
				case "get":
					got, err = store.Get(step.account)
				case "set":
					err = store.Set(step.account, step.secret)
				case "delete":
					err = store.Delete(step.account)
				case "check":
					err = store.Check()
				}
				if step.wantErr == nil && err != nil {
					t.Fatalf("step %d: %s %s: %v", i, step.op, step.account, err)
				}
				if step.wantErr != nil && !errors.Is(err, step.wantErr) {
					t.Fatalf("step %d: %s %s: err = %v, want %v", i, step.op, step.account, err, step.wantErr)
				}
				if step.op == "get" && err == nil && got != step.secret {
					t.Fatalf("step %d: get %s = %.40q, want %.40q", i, step.account, got, step.secret)
				}
				results[s.name] = append(results[s.name], errText(err))
			}
		})
	}
	k, m := results["Keyring"], results["Memory"]
	if len(k) != len(m) {
		return // one side was skipped or failed
	}
	for i := range k {
		if got, want := m[i], k[i]; got != want {
			t.Errorf("step %d: Memory error %q, Keyring error %q", i, got, want)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestKeysOnKeyring(t *testing.T) {
	k := MustCleanKeyring(t, keystore.APIKeyAccount, keystore.APIKeyAccount+".stored-at", keystore.AdminKeyAccount, keystore.AdminKeyAccount+".stored-at")
	now := time.Date(2025, 3, 14, 15, 9, 26, 0, time.FixedZone("CET", 3600))
	keys := &keystore.Keys{Store: k, Now: func() time.Time { return now }}

	if _, err := keys.APIKey(); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("APIKey() before set: err = %v, want ErrNotFound", err)
	}
	apiKey := testKey("sk-proj-", "WXYZ")
	if err := keys.SetAPIKey("  " + apiKey + "\n"); err != nil {
		t.Fatalf("SetAPIKey: %v", err)
	}
	got, err := keys.APIKey()
	if err != nil {
		t.Fatalf("APIKey: %v", err)
	}
	if got.Value != apiKey {
		t.Fatalf("APIKey().Value = %s, want the key set", keystore.Redact(got.Value))
	}
	if !got.StoredAt.Equal(now) {
		t.Fatalf("APIKey().StoredAt = %v, want %v", got.StoredAt, now)
	}
	if _, err := keys.AdminKey(); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("AdminKey() = %v, want ErrNotFound", err)
	}
	adminKey := testKey("sk-admin-", "ADMN")
	if err := keys.SetAdminKey(adminKey); err != nil {
		t.Fatalf("SetAdminKey: %v", err)
	}
	if got, err := keys.AdminKey(); err != nil || got.Value != adminKey {
		t.Fatalf("AdminKey() = %v, %v; want the admin key", got, err)
	}

	if err := keys.DeleteAPIKey(); err != nil {
		t.Fatalf("DeleteAPIKey: %v", err)
	}
	if _, err := keys.APIKey(); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("APIKey() after delete: err = %v, want ErrNotFound", err)
	}
	if _, err := k.Get(keystore.APIKeyAccount + ".stored-at"); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("stored-at entry after delete: err = %v, want ErrNotFound", err)
	}
	if err := keys.DeleteAPIKey(); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("second DeleteAPIKey: err = %v, want ErrNotFound", err)
	}
	if got, err := keys.AdminKey(); err != nil || got.Value != adminKey {
		t.Fatalf("AdminKey() after deleting the API key = %v, %v; want it kept", got, err)
	}
}

func TestLockedKeyring(t *testing.T) {
	ss := keystoretest.Require(t)
	k := MustCleanKeyring(t, "locked")
	if err := k.Set("locked", "s3cret"); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := ss.Lock(); err != nil {
		t.Fatalf("lock: %v", err)
	}
	t.Cleanup(func() {
		if err := ss.Unlock(); err != nil {
			t.Fatalf("unlock: %v", err)
		}
	})

	if err := k.Check(); !errors.Is(err, keystore.ErrLocked) {
		t.Fatalf("Check() = %v, want ErrLocked", err)
	}
	// gnome-keyring cannot show its unlock prompt here (no prompter on the
	// bus), so it dismisses it at once.
	_, err := k.Get("locked")
	if !errors.Is(err, keystore.ErrLocked) || errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Get() = %v, want ErrLocked", err)
	}
	if got, want := err.Error(), keystore.ErrLocked.Error(); got != want {
		t.Fatalf("Get() error = %q, want %q", got, want)
	}
	if err := k.Set("locked", "other"); !errors.Is(err, keystore.ErrLocked) {
		t.Fatalf("Set() = %v, want ErrLocked", err)
	}

	if err := ss.Unlock(); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	if err := k.Check(); err != nil {
		t.Fatalf("Check() after unlock = %v, want nil", err)
	}
	if got, err := k.Get("locked"); err != nil || got != "s3cret" {
		t.Fatalf("Get() after unlock = %q, %v; want %q", got, err, "s3cret")
	}
}

// TestNoSecretService runs TestNoSecretServiceChild in a new process (the
// session bus connection is per process) pointed at a bus with no Secret
// Service, and at no bus at all.
func TestNoSecretService(t *testing.T) {
	bare := keystoretest.MustStartBus(t)
	tests := []struct {
		name    string
		address string
	}{
		{"bus without Secret Service", bare.Address},
		{"no bus", "unix:path=" + t.TempDir() + "/no-such-bus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestNoSecretServiceChild$", "-test.v")
			cmd.Env = append(os.Environ(), childEnv+"=1", "DBUS_SESSION_BUS_ADDRESS="+tt.address)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestNoSecretServiceChild") {
				t.Fatalf("child: %v\n%s", err, out)
			}
		})
	}
}

func TestNoSecretServiceChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("run by TestNoSecretService")
	}
	k := &keystore.Keyring{Timeout: 10 * time.Second}
	keys := &keystore.Keys{Store: k}
	want := "no keychain is available: keycap keeps the API key in the system keychain (Secret Service); install and start gnome-keyring or KWallet, or log in to a desktop session"

	err := k.Check()
	if got := errText(err); got != want || !errors.Is(err, keystore.ErrUnavailable) {
		t.Errorf("Check() = %q, want %q", got, want)
	}
	_, err = k.Get("anything")
	if got := errText(err); got != want || !errors.Is(err, keystore.ErrUnavailable) || errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("Get() = %q, want %q", got, want)
	}
	err = keys.SetAPIKey(testKey("sk-", "ABCD"))
	if got, want := errText(err), "store the OpenAI API key: "+want; got != want || !errors.Is(err, keystore.ErrUnavailable) {
		t.Errorf("SetAPIKey() = %q, want %q", got, want)
	}
	_, err = keys.APIKey()
	if got, want := errText(err), "read the OpenAI API key: "+want; got != want || !errors.Is(err, keystore.ErrUnavailable) {
		t.Errorf("APIKey() = %q, want %q", got, want)
	}
}

// testKey returns a made-up key of a plausible shape ending in tail.
func testKey(prefix, tail string) string {
	return prefix + strings.Repeat("Ab3_x-Z9", 6) + tail
}
