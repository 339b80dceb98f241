package keystore_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keycap/keycap/keystore"
	"golang.org/x/sys/unix"
)

// MustOpenPTY returns the two ends of a new pseudo-terminal.
func MustOpenPTY(tb testing.TB) (master, tty *os.File) {
	tb.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		tb.Skipf("no pseudo-terminals here: %v", err)
	}
	tb.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		tb.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		tb.Fatalf("ptsname: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		tb.Skipf("no pseudo-terminals here: %v", err)
	}
	tb.Cleanup(func() { tty.Close() })
	return master, tty
}

// MustWaitEchoOff waits until the terminal stops echoing.
func MustWaitEchoOff(tb testing.TB, tty *os.File) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		termios, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		if err != nil {
			tb.Fatal(err)
		}
		if termios.Lflag&unix.ECHO == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("echo was never turned off")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestReadSecretFromTerminalDoesNotEcho(t *testing.T) {
	master, tty := MustOpenPTY(t)
	key := testKey("sk-proj-", "WXYZ")

	type result struct {
		key string
		err error
	}
	done := make(chan result, 1)
	var stderr bytes.Buffer
	go func() {
		s, err := keystore.ReadSecret(tty, &stderr, "OpenAI API key: ")
		done <- result{s, err}
	}()
	// Type only once echo is off, as a person would after the prompt.
	MustWaitEchoOff(t, tty)
	if _, err := io.WriteString(master, " "+key+"\r"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.key != key {
		t.Fatalf("ReadSecret() = %s, %v; want the typed key", keystore.Redact(r.key), r.err)
	}
	if got, want := stderr.String(), "OpenAI API key: \n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
	termios, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if termios.Lflag&unix.ECHO == 0 {
		t.Errorf("echo is still off after ReadSecret")
	}

	// Whatever the terminal showed is readable on the master side.
	if _, err := io.WriteString(tty, "end\n"); err != nil {
		t.Fatal(err)
	}
	var shown strings.Builder
	buf := make([]byte, 256)
	for !strings.Contains(shown.String(), "end") {
		n, err := master.Read(buf)
		shown.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if strings.Contains(shown.String(), key[10:30]) {
		t.Errorf("the terminal echoed the key: %q", shown.String())
	}
}

func TestReadSecretFromTerminalEmpty(t *testing.T) {
	master, tty := MustOpenPTY(t)
	done := make(chan error, 1)
	go func() {
		_, err := keystore.ReadSecret(tty, io.Discard, "Key: ")
		done <- err
	}()
	MustWaitEchoOff(t, tty)
	if _, err := io.WriteString(master, "\r"); err != nil {
		t.Fatal(err)
	}
	if got, want := errText(<-done), "nothing was entered: paste the key at the prompt and press Enter"; got != want {
		t.Fatalf("ReadSecret() error = %q, want %q", got, want)
	}
}
