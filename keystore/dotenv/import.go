package dotenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/keycap/keycap/keystore"
)

// APIKeyVar is the variable ImportFile moves into the keychain.
const APIKeyVar = "OPENAI_API_KEY"

// ErrNoKey is returned by ImportFile, wrapped, when the file does not set
// APIKeyVar.
var ErrNoKey = errors.New("it does not set " + APIKeyVar + ", so there is nothing to import")

// ImportFile moves the OpenAI API key out of the .env file at path and into
// the keychain through keys, and returns the key in redacted form.
//
// The key is validated and stored, and read back, before the file is
// touched: if that fails the file is left as it was. The file is then
// rewritten without any OPENAI_API_KEY assignment, every other line kept
// byte for byte, through a temporary file in the same directory renamed
// over it, keeping its permissions; a symbolic link is followed, so the file
// it points to is rewritten. With keepBackup the original content is first
// saved next to it as FILE.bak, readable by its owner only: that copy still
// holds the key. Errors never contain the key.
func ImportFile(path string, keys *keystore.Keys, keepBackup bool) (redacted string, err error) {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	info, err := os.Stat(target)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	content, err := os.ReadFile(target)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	rest, value, found, err := Remove(content, APIKeyVar)
	switch {
	case err != nil:
		return "", fmt.Errorf("%s: %w", path, err)
	case !found:
		return "", fmt.Errorf("%s: %w", path, ErrNoKey)
	case value == "":
		return "", fmt.Errorf("%s sets %s to an empty value, so there is nothing to import", path, APIKeyVar)
	}

	if err := keys.SetAPIKey(value); err != nil {
		return "", fmt.Errorf("import %s from %s: %w (the file is unchanged)", APIKeyVar, path, err)
	}
	stored, err := keys.APIKey()
	if err != nil {
		return "", fmt.Errorf("import %s from %s: read the key back: %w (the file is unchanged)", APIKeyVar, path, err)
	}
	if want, _ := keystore.ParseAPIKey(value); stored.Value != want {
		return "", fmt.Errorf("import %s from %s: the keychain did not give back the key just stored (the file is unchanged)", APIKeyVar, path)
	}

	if keepBackup {
		if err := writeAtomic(target+".bak", content, 0o600); err != nil {
			return "", fmt.Errorf("the key is in the keychain, but writing a backup of %s failed (the file is unchanged): %w", path, err)
		}
	}
	if err := writeAtomic(target, rest, info.Mode().Perm()); err != nil {
		return "", fmt.Errorf("the key is in the keychain, but rewriting %s failed, so remove its %s line by hand: %w", path, APIKeyVar, err)
	}
	return stored.Redacted(), nil
}

// writeAtomic replaces the file at path with data: readers see the old
// content or the new, never a mix.
func writeAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".keycap-*")
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("chmod temp file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write temp file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync temp file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close temp file: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("replace file: %w", err)
	}
	// Make the rename itself durable; not every system can sync a directory.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
