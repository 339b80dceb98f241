package keystore_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/keycap/keycap/keystore"
)

func TestReadSecretFromPipe(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  string
		error string
	}{
		{"line", "sk-abc\n", "sk-abc", ""},
		{"no newline", "sk-abc", "sk-abc", ""},
		{"CRLF and spaces", "  sk-abc \r\n", "sk-abc", ""},
		{"first line only", "sk-abc\nsk-def\n", "sk-abc", ""},
		{"empty", "", "", "standard input is empty: pipe the key in on one line, or run the command in a terminal to type it"},
		{"blank line", " \n", "", "standard input is empty: pipe the key in on one line, or run the command in a terminal to type it"},
		{"too long", strings.Repeat("x", 70000), "", "the first line of standard input is longer than 65536 bytes: that is not a key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got, err := keystore.ReadSecret(strings.NewReader(tt.in), &stderr, "Key: ")
			if got != tt.want || errText(err) != tt.error {
				t.Fatalf("ReadSecret() = %q, %q; want %q, %q", got, errText(err), tt.want, tt.error)
			}
			if stderr.Len() != 0 {
				t.Errorf("wrote %q to stderr, want nothing when not a terminal", stderr.String())
			}
		})
	}
}

func TestReadSecretLeavesRestOfInput(t *testing.T) {
	in := strings.NewReader("sk-abc\nrest\n")
	if _, err := keystore.ReadSecret(in, io.Discard, ""); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(in)
	if got, want := string(rest), "rest\n"; got != want {
		t.Fatalf("left %q, want %q", got, want)
	}
}
