package dotenv_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keycap/keycap/keystore"
	"github.com/keycap/keycap/keystore/dotenv"
	"github.com/keycap/keycap/keystore/keystoretest"
)

func TestMain(m *testing.M) {
	os.Exit(keystoretest.Main(m))
}

// The key in the sample is made up, of the shape of a project key.
var sampleKey = "sk-proj-" + strings.Repeat("Qz7Vw3Rt9Lp2Mn8K", 4) + "WXYZ"

const sampleEnv = `# Settings for local development
export APP_ENV=dev
OPENAI_API_KEY="{{KEY}}"   # from the dashboard
DATABASE_URL='postgres://app:pw@localhost/app'
NOTES="two
lines"

  OPENAI_ORG = org-123 # kept
`

const sampleRest = `# Settings for local development
export APP_ENV=dev
DATABASE_URL='postgres://app:pw@localhost/app'
NOTES="two
lines"

  OPENAI_ORG = org-123 # kept
`

// MustWriteEnv writes content, with the sample key in place of {{KEY}},
// to a .env file in a new directory, and returns its path.
func MustWriteEnv(tb testing.TB, content string, perm os.FileMode) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), ".env")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(content, "{{KEY}}", sampleKey)), perm); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // past the umask
		tb.Fatal(err)
	}
	return path
}

// MustKeyringKeys returns Keys on the private Secret Service, with the API
// key entries deleted before and after the test.
func MustKeyringKeys(tb testing.TB) *keystore.Keys {
	tb.Helper()
	keystoretest.Require(tb)
	store := &keystore.Keyring{Timeout: 10 * time.Second}
	keys := &keystore.Keys{Store: store}
	clean := func() {
		if err := keys.DeleteAPIKey(); err != nil && !errors.Is(err, keystore.ErrNotFound) {
			tb.Fatal(err)
		}
	}
	clean()
	tb.Cleanup(clean)
	return keys
}

func dirNames(tb testing.TB, dir string) []string {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestImportFile(t *testing.T) {
	ss := keystoretest.Require(t)
	keys := MustKeyringKeys(t)
	path := MustWriteEnv(t, sampleEnv, 0o640)

	redacted, err := dotenv.ImportFile(path, keys, false)
	if err != nil {
		t.Fatalf("ImportFile: %v", err)
	}
	if got, want := redacted, "sk-…WXYZ"; got != want {
		t.Errorf("redacted = %q, want %q", got, want)
	}

	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != sampleRest {
		t.Errorf("rewritten file:\n%s\nwant:\n%s", got, sampleRest)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.Mode().Perm(), os.FileMode(0o640); got != want {
		t.Errorf("mode = %v, want %v", got, want)
	}
	if got, want := dirNames(t, filepath.Dir(path)), []string{".env"}; !slices.Equal(got, want) {
		t.Errorf("directory holds %q, want %q (no backup, no temp file)", got, want)
	}

	key, err := keys.APIKey()
	if err != nil {
		t.Fatalf("APIKey: %v", err)
	}
	if key.Value != sampleKey {
		t.Errorf("keychain holds %s, want the key from the file", key)
	}
	if key.StoredAt.IsZero() {
		t.Errorf("StoredAt is zero, want the import time")
	}
	secret, found, err := ss.Lookup(map[string]string{"service": "keycap", "username": "openai-api-key"})
	if err != nil || !found || secret != sampleKey {
		t.Errorf("Secret Service lookup: found %v, err %v; want the key", found, err)
	}
}

func TestImportFileKeepBackup(t *testing.T) {
	keys := MustKeyringKeys(t)
	path := MustWriteEnv(t, sampleEnv, 0o644)
	original, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := dotenv.ImportFile(path, keys, true); err != nil {
		t.Fatalf("ImportFile: %v", err)
	}
	if got, want := dirNames(t, filepath.Dir(path)), []string{".env", ".env.bak"}; !slices.Equal(got, want) {
		t.Errorf("directory holds %q, want %q", got, want)
	}
	backup, err := os.ReadFile(path + ".bak")
	if err != nil {
		t.Fatal(err)
	}
	if string(backup) != string(original) {
		t.Errorf("backup = %q, want the original file", backup)
	}
	info, err := os.Stat(path + ".bak")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("backup mode = %v, want %v: it holds the key", got, want)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != sampleRest {
		t.Errorf("rewritten file = %q, %v; want %q", got, err, sampleRest)
	}
}

func TestImportFileFollowsSymlink(t *testing.T) {
	keys := &keystore.Keys{Store: new(keystore.Memory)}
	target := MustWriteEnv(t, sampleEnv, 0o600)
	link := filepath.Join(t.TempDir(), ".env")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := dotenv.ImportFile(link, keys, false); err != nil {
		t.Fatalf("ImportFile: %v", err)
	}
	if info, err := os.Lstat(link); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("%s is no longer a symlink (%v)", link, err)
	}
	if got, err := os.ReadFile(target); err != nil || string(got) != sampleRest {
		t.Errorf("target = %q, %v; want %q", got, err, sampleRest)
	}
}

// TestImportFileFailureLeavesFile checks that when the key cannot be
// stored, or is not there, the file is untouched and nothing else is
// written.
func TestImportFileFailureLeavesFile(t *testing.T) {
	locked := new(keystore.Memory)
	locked.Fail(keystore.ErrLocked)
	tests := []struct {
		name    string
		content string
		keys    func(t *testing.T) *keystore.Keys
		want    string // error text, with {{PATH}} for the file's path
		is      error
	}{
		{
			name:    "locked keychain",
			content: sampleEnv,
			keys:    func(*testing.T) *keystore.Keys { return &keystore.Keys{Store: locked} },
			want:    "import OPENAI_API_KEY from {{PATH}}: store the OpenAI API key: the keychain is locked: unlock it (for example by logging in to your desktop) and try again (the file is unchanged)",
			is:      keystore.ErrLocked,
		},
		{
			name:    "locked real keychain",
			content: sampleEnv,
			keys: func(t *testing.T) *keystore.Keys {
				ss := keystoretest.Require(t)
				keys := MustKeyringKeys(t)
				if err := ss.Lock(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if err := ss.Unlock(); err != nil {
						t.Fatal(err)
					}
				})
				return keys
			},
			want: "import OPENAI_API_KEY from {{PATH}}: store the OpenAI API key: the keychain is locked: unlock it (for example by logging in to your desktop) and try again (the file is unchanged)",
			is:   keystore.ErrLocked,
		},
		{
			name:    "admin key",
			content: "OPENAI_API_KEY=sk-admin-" + strings.Repeat("Qz7Vw3Rt9Lp2Mn8K", 4) + "\n",
			want:    "import OPENAI_API_KEY from {{PATH}}: that is an OpenAI admin key (sk-admin-…), not an API key: store it as the admin key instead (the file is unchanged)",
			is:      keystore.ErrInvalidKey,
		},
		{
			name:    "not a key",
			content: "OPENAI_API_KEY=\"Bearer {{KEY}}\"\n",
			want:    "import OPENAI_API_KEY from {{PATH}}: that does not look like an OpenAI API key: it should start with sk- (the file is unchanged)",
			is:      keystore.ErrInvalidKey,
		},
		{
			name:    "no key",
			content: "A=1\n# OPENAI_API_KEY={{KEY}}\n",
			want:    "{{PATH}}: it does not set OPENAI_API_KEY, so there is nothing to import",
			is:      dotenv.ErrNoKey,
		},
		{
			name:    "empty key",
			content: "OPENAI_API_KEY=\n",
			want:    "{{PATH}} sets OPENAI_API_KEY to an empty value, so there is nothing to import",
		},
		{
			name:    "unclosed quote",
			content: "A=1\nOPENAI_API_KEY=\"{{KEY}}\n",
			want:    "{{PATH}}: line 2 sets OPENAI_API_KEY but cannot be read (is a quote not closed?): fix or remove it by hand",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := &keystore.Keys{Store: new(keystore.Memory)}
			if tt.keys != nil {
				keys = tt.keys(t)
			}
			path := MustWriteEnv(t, tt.content, 0o600)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			old := time.Now().Add(-time.Hour).Truncate(time.Second)
			if err := os.Chtimes(path, old, old); err != nil {
				t.Fatal(err)
			}

			redacted, err := dotenv.ImportFile(path, keys, true)
			if err == nil {
				t.Fatalf("ImportFile() = %q, want an error", redacted)
			}
			if got, want := err.Error(), strings.ReplaceAll(tt.want, "{{PATH}}", path); got != want {
				t.Errorf("error = %q\nwant    %q", got, want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error does not match %v", tt.is)
			}
			if strings.Contains(err.Error(), sampleKey[8:40]) || strings.Contains(redacted, sampleKey[8:40]) {
				t.Errorf("output shows the key: %q, %q", err, redacted)
			}

			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(after) != string(before) {
				t.Errorf("file changed to %q", after)
			}
			if info, err := os.Stat(path); err != nil || !info.ModTime().Equal(old) {
				t.Errorf("file was rewritten (%v)", err)
			}
			if got, want := dirNames(t, filepath.Dir(path)), []string{".env"}; !slices.Equal(got, want) {
				t.Errorf("directory holds %q, want %q", got, want)
			}
			if _, err := keys.APIKey(); err == nil {
				t.Errorf("a key was stored")
			}
		})
	}
}

func TestImportFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	_, err := dotenv.ImportFile(path, &keystore.Keys{Store: new(keystore.Memory)}, false)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ImportFile(missing) = %v, want ErrNotExist", err)
	}
}
