package dotenv_test

import (
	"strings"
	"testing"

	"github.com/keycap/keycap/keystore/dotenv"
)

func TestRemove(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		rest    string
		value   string
		notSeen bool
	}{
		{
			name:  "plain",
			in:    "A=1\nOPENAI_API_KEY=sk-abc\nB=2\n",
			rest:  "A=1\nB=2\n",
			value: "sk-abc",
		},
		{
			name:  "export and spaces around =",
			in:    "A=1\nexport   OPENAI_API_KEY =  sk-abc  \nB=2\n",
			rest:  "A=1\nB=2\n",
			value: "sk-abc",
		},
		{
			name:  "indented",
			in:    "  OPENAI_API_KEY=sk-abc\n\tB=2\n",
			rest:  "\tB=2\n",
			value: "sk-abc",
		},
		{
			name:  "double quotes with escapes",
			in:    "OPENAI_API_KEY=\"sk-\\\"a\\\\b\\nc\" # note\nB=2\n",
			rest:  "B=2\n",
			value: "sk-\"a\\b\nc",
		},
		{
			name:  "single quotes keep backslashes",
			in:    "OPENAI_API_KEY='sk-a\\nb\\'c'\nB=2\n",
			rest:  "B=2\n",
			value: "sk-a\\nb'c",
		},
		{
			name:  "inline comment after unquoted value",
			in:    "OPENAI_API_KEY=sk-abc   # my key\nB=2 # two\n",
			rest:  "B=2 # two\n",
			value: "sk-abc",
		},
		{
			name:  "hash without space is part of the value",
			in:    "OPENAI_API_KEY=sk-abc#def\n",
			rest:  "",
			value: "sk-abc#def",
		},
		{
			name:  "only a comment",
			in:    "OPENAI_API_KEY=  # none yet\nB=2\n",
			rest:  "B=2\n",
			value: "",
		},
		{
			name:  "empty value",
			in:    "OPENAI_API_KEY=\nB=2\n",
			rest:  "B=2\n",
			value: "",
		},
		{
			name:  "CRLF kept on other lines",
			in:    "# keys\r\nA=1\r\nOPENAI_API_KEY=sk-abc\r\n\r\nB=2\r\n",
			rest:  "# keys\r\nA=1\r\n\r\nB=2\r\n",
			value: "sk-abc",
		},
		{
			name:  "CR line breaks",
			in:    "A=1\rOPENAI_API_KEY=sk-abc\rB=2",
			rest:  "A=1\rB=2",
			value: "sk-abc",
		},
		{
			name:  "last line without a line break",
			in:    "A=1\nOPENAI_API_KEY=sk-abc",
			rest:  "A=1\n",
			value: "sk-abc",
		},
		{
			name:  "last assignment wins, all removed",
			in:    "OPENAI_API_KEY=sk-old\nA=1\nexport OPENAI_API_KEY=\"sk-new\"\nB=2\n",
			rest:  "A=1\nB=2\n",
			value: "sk-new",
		},
		{
			name:  "multi-line value removed whole",
			in:    "A=1\nOPENAI_API_KEY=\"sk-abc\ndef\"\nB=2\n",
			rest:  "A=1\nB=2\n",
			value: "sk-abc\ndef",
		},
		{
			name:    "name inside another variable's multi-line value",
			in:      "NOTES=\"remember:\nOPENAI_API_KEY=sk-not-this\"\nB=2\n",
			rest:    "NOTES=\"remember:\nOPENAI_API_KEY=sk-not-this\"\nB=2\n",
			notSeen: true,
		},
		{
			name:    "commented out",
			in:      "# OPENAI_API_KEY=sk-abc\n#OPENAI_API_KEY=sk-def\n",
			rest:    "# OPENAI_API_KEY=sk-abc\n#OPENAI_API_KEY=sk-def\n",
			notSeen: true,
		},
		{
			name:    "similar names kept",
			in:      "OPENAI_API_KEY_2=x\nMY_OPENAI_API_KEY=y\nOPENAI_API_KEYS=z\n",
			rest:    "OPENAI_API_KEY_2=x\nMY_OPENAI_API_KEY=y\nOPENAI_API_KEYS=z\n",
			notSeen: true,
		},
		{
			name:    "name without = assigns nothing",
			in:      "OPENAI_API_KEY\nB=2\n",
			rest:    "OPENAI_API_KEY\nB=2\n",
			notSeen: true,
		},
		{
			name:  "quoted name",
			in:    "'OPENAI_API_KEY'=sk-abc\nB=2\n",
			rest:  "B=2\n",
			value: "sk-abc",
		},
		{
			name:  "byte order mark kept",
			in:    "\uFEFFOPENAI_API_KEY=sk-abc\nB=2\n",
			rest:  "\uFEFFB=2\n",
			value: "sk-abc",
		},
		{
			name:  "blank lines and odd lines around kept",
			in:    "\n\n  \nthis is not valid\nOPENAI_API_KEY=sk-abc\n\n=oops\n",
			rest:  "\n\n  \nthis is not valid\n\n=oops\n",
			value: "sk-abc",
		},
		{
			name:  "escaped quote at the end closes the value",
			in:    "OPENAI_API_KEY='sk-abc\\'\nB=2\n",
			rest:  "B=2\n",
			value: "sk-abc\\",
		},
		{
			name:    "empty file",
			in:      "",
			rest:    "",
			notSeen: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rest, value, found, err := dotenv.Remove([]byte(tt.in), "OPENAI_API_KEY")
			if err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if got, want := string(rest), tt.rest; got != want {
				t.Errorf("rest = %q, want %q", got, want)
			}
			if got, want := value, tt.value; got != want {
				t.Errorf("value = %q, want %q", got, want)
			}
			if got, want := found, !tt.notSeen; got != want {
				t.Errorf("found = %v, want %v", got, want)
			}
		})
	}
}

func TestRemoveErrors(t *testing.T) {
	tests := []struct {
		name, in, varName, want string
	}{
		{"unclosed double quote", "A=1\nOPENAI_API_KEY=\"sk-secret-abc\nB=2\n", "OPENAI_API_KEY", "line 2 sets OPENAI_API_KEY but cannot be read (is a quote not closed?): fix or remove it by hand"},
		{"junk after quotes", "export OPENAI_API_KEY='sk-secret-abc' junk\n", "OPENAI_API_KEY", "line 1 sets OPENAI_API_KEY but cannot be read (is a quote not closed?): fix or remove it by hand"},
		{"CRLF line count", "A=1\r\n\r\nOPENAI_API_KEY='sk-secret-abc\r\n", "OPENAI_API_KEY", "line 3 sets OPENAI_API_KEY but cannot be read (is a quote not closed?): fix or remove it by hand"},
		{"empty name", "A=1\n", "", `"" is not a variable name`},
		{"name with =", "A=1\n", "A=1", `"A=1" is not a variable name`},
		{"name with space", "A=1\n", "A B", `"A B" is not a variable name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rest, value, found, err := dotenv.Remove([]byte(tt.in), tt.varName)
			if err == nil {
				t.Fatalf("Remove() = %q, %q, %v; want an error", rest, value, found)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error = %q, want %q", got, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error shows the value: %q", err)
			}
		})
	}
}
