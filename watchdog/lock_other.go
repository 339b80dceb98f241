//go:build !unix

package watchdog

import (
	"fmt"
	"os"
)

// acquireLock on systems without flock creates the lock file exclusively;
// Windows keeps an open file from being deleted, and the file is removed on
// Close.
func acquireLock(path string) (*os.File, error) {
	os.Remove(path) // fails while another engine holds it open
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		b, _ := os.ReadFile(path)
		return nil, fmt.Errorf("keycap is already running (process %s); stop it first", string(b))
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, nil
}

func releaseLock(f *os.File) {
	name := f.Name()
	f.Close()
	os.Remove(name)
}
