package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/term"
)

// maxSecretLine bounds what ReadSecret reads from a pipe.
const maxSecretLine = 64 << 10

// ReadSecret reads a secret, such as an API key, for a command. When stdin
// is a terminal it writes prompt to stderr and reads a line without echoing
// it; otherwise it reads a single line and nothing more (no prompt is
// written). Surrounding white space is trimmed, and an empty secret is an
// error. The secret is not validated.
func ReadSecret(stdin io.Reader, stderr io.Writer, prompt string) (string, error) {
	if f, ok := stdin.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read from the terminal: %w", err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", errors.New("nothing was entered: paste the key at the prompt and press Enter")
		}
		return s, nil
	}

	line, err := readLine(stdin)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(line)
	if s == "" {
		return "", errors.New("standard input is empty: pipe the key in on one line, or run the command in a terminal to type it")
	}
	return s, nil
}

// readLine reads up to and including the first newline, one byte at a time
// so that nothing after the line is consumed.
func readLine(r io.Reader) (string, error) {
	var buf bytes.Buffer
	b := make([]byte, 1)
	for {
		n, err := r.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				return buf.String(), nil
			}
			if buf.Len() >= maxSecretLine {
				return "", fmt.Errorf("the first line of standard input is longer than %d bytes: that is not a key", maxSecretLine)
			}
			buf.WriteByte(b[0])
		}
		if errors.Is(err, io.EOF) {
			return buf.String(), nil
		}
		if err != nil {
			return "", fmt.Errorf("read standard input: %w", err)
		}
	}
}
