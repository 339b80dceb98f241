package dotenv

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzRemove checks, for any input, that Remove does not panic, that it
// only ever cuts whole statements naming the variable, that every other
// line survives byte for byte and every other variable keeps its value, and
// that a second Remove finds nothing.
func FuzzRemove(f *testing.F) {
	for _, seed := range []string{
		"A=1\nOPENAI_API_KEY=sk-abc\nB=2\n",
		"export OPENAI_API_KEY = 'sk-a\\'b' # c\r\n",
		"NOTES=\"x\nOPENAI_API_KEY=no\"\nOPENAI_API_KEY=\"multi\nline\"\n",
		"# OPENAI_API_KEY=commented\n\n=oops\nOPENAI_API_KEY\n",
	} {
		f.Add([]byte(seed), "OPENAI_API_KEY")
	}
	f.Fuzz(func(t *testing.T, content []byte, name string) {
		rest, value, found, err := Remove(content, name)
		if err != nil {
			if rest != nil || value != "" || found {
				t.Fatalf("Remove returned %q, %q, %v with error %v", rest, value, found, err)
			}
			return
		}
		bindings := parse(content)

		var cut []binding
		for _, b := range bindings {
			if b.ok && b.hasValue && b.key == name {
				cut = append(cut, b)
			}
		}
		if got, want := found, len(cut) > 0; got != want {
			t.Fatalf("found = %v, want %v", got, want)
		}
		if found && value != cut[len(cut)-1].value {
			t.Fatalf("value = %q, want the last assignment's %q", value, cut[len(cut)-1].value)
		}

		// Everything outside the cut statements is kept, in order, and each
		// cut starts at a line start with the name (after blanks and an
		// optional export) and ends after a line break or at the end.
		var kept []byte
		at := 0
		for _, b := range cut {
			if b.start < at || b.end < b.start || b.end > len(content) {
				t.Fatalf("bad span [%d, %d) after %d", b.start, b.end, at)
			}
			if b.start > 0 && b.start > bomLen(content) && !isBreak(content[b.start-1]) {
				t.Fatalf("cut starts mid-line at %d: %q", b.start, content)
			}
			if b.end < len(content) && !isBreak(content[b.end-1]) {
				t.Fatalf("cut ends mid-line at %d: %q", b.end, content)
			}
			first := content[b.start:b.end]
			if i := bytes.IndexAny(first, "\r\n"); i >= 0 {
				first = first[:i]
			}
			if !assigns(first, name) {
				t.Fatalf("cut line %q does not assign %q", first, name)
			}
			kept = append(kept, content[at:b.start]...)
			at = b.end
		}
		kept = append(kept, content[at:]...)
		if !bytes.Equal(rest, kept) {
			t.Fatalf("rest = %q, want %q", rest, kept)
		}

		// Other variables parse the same from what is left.
		if got, want := values(rest, name), values(content, name); got != want {
			t.Fatalf("other variables changed:\n got %s\nwant %s", got, want)
		}

		again, _, foundAgain, err := Remove(rest, name)
		if err != nil || foundAgain || !bytes.Equal(again, rest) {
			t.Fatalf("second Remove = %q, %v, %v; want nothing found", again, foundAgain, err)
		}
	})
}

// values lists the statements other than those assigning name, as parsed.
func values(content []byte, name string) string {
	var sb strings.Builder
	for _, b := range parse(content) {
		if b.ok && b.hasValue && b.key == name {
			continue
		}
		sb.WriteString(b.key + "=" + b.value + ";")
		if !b.ok {
			sb.WriteString("(error);")
		}
	}
	return sb.String()
}

// assigns reports whether line starts with name, after blanks and an
// optional export, quoted or not.
func assigns(line []byte, name string) bool {
	s := strings.TrimLeftFunc(string(line), isBlank)
	if t, ok := strings.CutPrefix(s, "export"); ok && strings.TrimLeftFunc(t, isBlank) != t {
		s = strings.TrimLeftFunc(t, isBlank)
	}
	return strings.HasPrefix(s, name) || strings.HasPrefix(s, "'"+name+"'")
}

func bomLen(b []byte) int {
	if bytes.HasPrefix(b, []byte("\uFEFF")) {
		return len("\uFEFF")
	}
	return 0
}

func isBreak(c byte) bool { return c == '\n' || c == '\r' }
