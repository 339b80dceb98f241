package keystore_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keycap/keycap/keystore"
)

func TestParseAPIKey(t *testing.T) {
	legacy := "sk-" + strings.Repeat("a1B2", 12) // 51 characters
	project := testKey("sk-proj-", "WXYZ")
	tests := []struct {
		name  string
		in    string
		want  string
		error string // empty: valid
	}{
		{"legacy", legacy, legacy, ""},
		{"project", project, project, ""},
		{"service account", testKey("sk-svcacct-", "ABCD"), testKey("sk-svcacct-", "ABCD"), ""},
		{"trimmed", "\t " + project + "\r\n", project, ""},
		{"empty", "", "", "the API key is empty"},
		{"blank", " \n", "", "the API key is empty"},
		{"admin key", testKey("sk-admin-", "ABCD"), "", "that is an OpenAI admin key (sk-admin-…), not an API key: store it as the admin key instead"},
		{"no prefix", strings.Repeat("x", 50), "", "that does not look like an OpenAI API key: it should start with sk-"},
		{"bearer header", "Bearer " + project, "", "that does not look like an OpenAI API key: it should start with sk-"},
		{"quoted", `"` + project + `"`, "", "that does not look like an OpenAI API key: it should start with sk-"},
		{"trailing quote", project + `"`, "", "that does not look like an OpenAI API key: it may contain only letters, digits, - and _, but character 61 is a quote (leave the quotes out)"},
		{"two keys", project + " " + project, "", "that does not look like an OpenAI API key: it may contain only letters, digits, - and _, but character 61 is a space"},
		{"two lines", project + "\n" + project, "", "that does not look like an OpenAI API key: it may contain only letters, digits, - and _, but character 61 is a line break (was more than one line pasted?)"},
		{"other character", "sk-proj-é" + strings.Repeat("a", 40), "", "that does not look like an OpenAI API key: it may contain only letters, digits, - and _, but character 9 is another character"},
		{"too short", "sk-abc123", "", "that does not look like an OpenAI API key: it is too short (9 characters; OpenAI keys have at least 40)"},
		{"too long", "sk-" + strings.Repeat("a", 1100), "", "that does not look like an OpenAI API key: it is too long (1103 characters; OpenAI keys have at most 1024)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := keystore.ParseAPIKey(tt.in)
			if tt.error == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ParseAPIKey() = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if got, want := errText(err), tt.error; got != want {
				t.Fatalf("error = %q, want %q", got, want)
			}
			if !errors.Is(err, keystore.ErrInvalidKey) {
				t.Errorf("error does not match ErrInvalidKey")
			}
			if got != "" {
				t.Errorf("ParseAPIKey() = %q, want empty on error", got)
			}
		})
	}
}

func TestParseAdminKey(t *testing.T) {
	admin := testKey("sk-admin-", "ABCD")
	tests := []struct {
		name  string
		in    string
		error string
	}{
		{"admin", admin, ""},
		{"trimmed", " " + admin + "\n", ""},
		{"empty", "", "the admin key is empty"},
		{"API key", testKey("sk-proj-", "ABCD"), "that is an OpenAI API key, not an admin key: admin keys start with sk-admin- (create one in the OpenAI dashboard under Organization settings, Admin keys)"},
		{"no prefix", "admin-" + strings.Repeat("x", 50), "that does not look like an OpenAI admin key: it should start with sk-admin-"},
		{"too short", "sk-admin-abc", "that does not look like an OpenAI admin key: it is too short (12 characters; OpenAI keys have at least 40)"},
		{"space", "sk-admin- " + strings.Repeat("x", 50), "that does not look like an OpenAI admin key: it may contain only letters, digits, - and _, but character 10 is a space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := keystore.ParseAdminKey(tt.in)
			if got, want := errText(err), tt.error; got != want {
				t.Fatalf("error = %q, want %q", got, want)
			}
			if tt.error == "" && got != admin {
				t.Fatalf("ParseAdminKey() = %q, want %q", got, admin)
			}
			if tt.error != "" && !errors.Is(err, keystore.ErrInvalidKey) {
				t.Errorf("error does not match ErrInvalidKey")
			}
		})
	}
}

// TestInvalidKeyErrorsDoNotContainKey feeds near-miss keys through both
// parsers and Keys, and looks for any run of the secret part in the errors.
func TestInvalidKeyErrorsDoNotContainKey(t *testing.T) {
	body := "Qz7Vw3Rt9Lp2Mn8Kx4Hy6Jb1Gc5Fd0Se"
	inputs := []string{
		"sk-" + body,
		"sk-" + body + " " + body,
		"sk-admin-" + body + body,
		"sk-proj-" + body + body,
		"xk-" + body + body,
		"sk-" + body + body + `"`,
		"sk-" + strings.Repeat(body, 40),
	}
	keys := &keystore.Keys{Store: new(keystore.Memory)}
	for _, in := range inputs {
		var errs []error
		_, err := keystore.ParseAPIKey(in)
		errs = append(errs, err)
		_, err = keystore.ParseAdminKey(in)
		errs = append(errs, err)
		errs = append(errs, keys.SetAPIKey(in), keys.SetAdminKey(in))
		for _, err := range errs {
			if err != nil && strings.Contains(err.Error(), body[:8]) {
				t.Errorf("error %q shows the key", err)
			}
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "(none)"},
		{"   ", "(none)"},
		{"sk-", "sk-…"},
		{"sk-abcdef", "sk-…"},
		{"sk-abcdefghijklmnop", "sk-…"},
		{"sk-abcdefghijklmnopq", "sk-…nopq"},
		{testKey("sk-", "ABCD"), "sk-…ABCD"},
		{testKey("sk-proj-", "WXYZ"), "sk-…WXYZ"},
		{testKey("sk-admin-", "ADMN"), "sk-…ADMN"},
		{" " + testKey("sk-", "ABCD") + "\n", "sk-…ABCD"},
		{"not-a-key-but-long-enough-1234", "…1234"},
		{"short", "…"},
		{strings.Repeat("é", 30) + "ñÑ✓x", "…ñÑ✓x"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := keystore.Redact(tt.in); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestKeyNeverPrintsValue(t *testing.T) {
	value := testKey("sk-proj-", "WXYZ")
	key := keystore.Key{Value: value, StoredAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	var log bytes.Buffer
	slog.New(slog.NewTextHandler(&log, nil)).Info("loaded", "key", key)
	js, err := json.Marshal(struct{ Key keystore.Key }{key})
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"String":   key.String(),
		"Redacted": key.Redacted(),
		"%v":       fmt.Sprintf("%v", key),
		"%+v":      fmt.Sprintf("%+v", key),
		"%#v":      fmt.Sprintf("%#v", key),
		"%s":       fmt.Sprintf("%s", key),
		"%q":       fmt.Sprintf("%q", key),
		"%x":       fmt.Sprintf("%x", key),
		"%d":       fmt.Sprintf("%d", key),
		"pointer":  fmt.Sprintf("%v", &key),
		"in slice": fmt.Sprintf("%v", []keystore.Key{key}),
		"in struct": fmt.Sprintf("%+v", struct {
			K keystore.Key
		}{key}),
		"slog": log.String(),
		"json": string(js),
	}
	for name, got := range outputs {
		if strings.Contains(got, value[10:30]) {
			t.Errorf("%s shows the key: %s", name, got)
		}
		if !strings.Contains(got, "WXYZ") {
			t.Errorf("%s = %q, want the redacted form", name, got)
		}
	}
	if got, want := fmt.Sprint(key), "sk-…WXYZ"; got != want {
		t.Errorf("Sprint(key) = %q, want %q", got, want)
	}
	if got, want := fmt.Sprintf("%#v", key), "keystore.Key(sk-…WXYZ)"; got != want {
		t.Errorf("%%#v = %q, want %q", got, want)
	}
	if got, want := log.String(), "key.key=sk-…WXYZ key.stored_at=2025-01-02T03:04:05.000Z"; !strings.Contains(got, want) {
		t.Errorf("slog output %q does not contain %q", got, want)
	}
}

func TestKeysOnMemory(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	store := new(keystore.Memory)
	keys := &keystore.Keys{Store: store, Now: func() time.Time { return now }}
	apiKey := testKey("sk-", "ABCD")

	if err := keys.SetAPIKey(apiKey); err != nil {
		t.Fatal(err)
	}
	if got, err := store.Get(keystore.APIKeyAccount); err != nil || got != apiKey {
		t.Fatalf("raw entry = %q, %v; want the bare key", got, err)
	}
	if got, err := store.Get(keystore.APIKeyAccount + ".stored-at"); err != nil || got != "2025-06-01T12:00:00Z" {
		t.Fatalf("stored-at entry = %q, %v; want RFC 3339", got, err)
	}

	// A garbled date leaves StoredAt zero; the key is still there.
	if err := store.Set(keystore.APIKeyAccount+".stored-at", "yesterday"); err != nil {
		t.Fatal(err)
	}
	got, err := keys.APIKey()
	if err != nil || got.Value != apiKey || !got.StoredAt.IsZero() {
		t.Fatalf("APIKey() = %v (stored %v), %v; want the key with no date", got, got.StoredAt, err)
	}

	if got, want := errText(keys.SetAPIKey("nope")), "that does not look like an OpenAI API key: it should start with sk-"; got != want {
		t.Fatalf("SetAPIKey(bad) = %q, want %q", got, want)
	}
	if got, err := keys.APIKey(); err != nil || got.Value != apiKey {
		t.Fatalf("a refused key replaced the stored one: %v, %v", got, err)
	}

	store.Fail(keystore.ErrLocked)
	if err := keys.SetAPIKey(apiKey); !errors.Is(err, keystore.ErrLocked) {
		t.Fatalf("SetAPIKey on a locked store = %v, want ErrLocked", err)
	}
	if _, err := keys.APIKey(); !errors.Is(err, keystore.ErrLocked) || errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("APIKey on a locked store = %v, want ErrLocked", err)
	}
	if err := keys.DeleteAPIKey(); !errors.Is(err, keystore.ErrLocked) {
		t.Fatalf("DeleteAPIKey on a locked store = %v, want ErrLocked", err)
	}
	store.Fail(nil)

	if got, want := errText(keys.DeleteAdminKey()), "no OpenAI admin key is stored in the keychain"; got != want {
		t.Fatalf("DeleteAdminKey() = %q, want %q", got, want)
	}
	_, err = keys.AdminKey()
	if got, want := errText(err), "no OpenAI admin key is stored in the keychain"; got != want || !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("AdminKey() = %q, want %q matching ErrNotFound", got, want)
	}
}

func TestKeysDefaultClock(t *testing.T) {
	keys := &keystore.Keys{Store: new(keystore.Memory)}
	before := time.Now().Add(-time.Second)
	if err := keys.SetAdminKey(testKey("sk-admin-", "ABCD")); err != nil {
		t.Fatal(err)
	}
	got, err := keys.AdminKey()
	if err != nil {
		t.Fatal(err)
	}
	if got.StoredAt.Before(before) || got.StoredAt.After(time.Now()) {
		t.Fatalf("StoredAt = %v, want about now", got.StoredAt)
	}
}

func TestMemoryConcurrent(t *testing.T) {
	m := new(keystore.Memory)
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			account := fmt.Sprint("acct-", i%2)
			for range 100 {
				_ = m.Set(account, "v")
				_, _ = m.Get(account)
				_ = m.Delete(account)
				_ = m.Check()
			}
		}()
	}
	for range 8 {
		<-done
	}
}
