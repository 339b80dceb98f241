// Package dotenv reads and rewrites .env files the way python-dotenv parses
// them, so that `keycap key import-env` can move OPENAI_API_KEY out of a
// project's .env file and into the keychain.
package dotenv

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// binding is one statement of a .env file, as python-dotenv's parser sees
// it.
type binding struct {
	// start and end delimit the bytes that removing the statement removes:
	// from the start of the line its name is on, through the end of its
	// value's last line and line break.
	start, end int
	line       int // 1-based line of the name
	key        string
	value      string
	hasValue   bool // the name is followed by '='
	ok         bool // false: python-dotenv would skip it with a warning
}

// Remove deletes every assignment of the variable name from the .env file
// content and returns what is left, byte for byte, and the value that
// python-dotenv would load: that of the last assignment. found reports
// whether there was any assignment.
//
// It understands what python-dotenv does: KEY=value and export KEY=value,
// spaces around '=', single quotes and double quotes (with backslash escapes
// in double quotes; either may span lines), # comments on their own lines
// and after values, blank lines, and LF, CRLF or CR line breaks. A line that
// names the variable without '=' assigns nothing and is kept. If a statement
// assigning the name cannot be parsed (say, an unclosed quote), Remove
// returns an error naming its line, and not the value.
func Remove(content []byte, name string) (rest []byte, value string, found bool, err error) {
	if name == "" || !utf8.ValidString(name) || strings.ContainsAny(name, "=#'\"") || strings.IndexFunc(name, isSpace) >= 0 {
		return nil, "", false, fmt.Errorf("%q is not a variable name", name)
	}
	bindings := parse(content)
	var cut []binding
	for _, b := range bindings {
		if b.key != name || !b.hasValue {
			continue
		}
		if !b.ok {
			return nil, "", false, fmt.Errorf("line %d sets %s but cannot be read (is a quote not closed?): fix or remove it by hand", b.line, name)
		}
		cut = append(cut, b)
		value = b.value
	}
	if len(cut) == 0 {
		return content, "", false, nil
	}
	rest = make([]byte, 0, len(content))
	at := 0
	for _, b := range cut {
		rest = append(rest, content[at:b.start]...)
		at = b.end
	}
	rest = append(rest, content[at:]...)
	return rest, value, true, nil
}

// parse splits content into statements following python-dotenv's grammar
// (dotenv/parser.py), including its way of recovering from lines it cannot
// parse.
func parse(content []byte) []binding {
	p := &parser{b: content}
	if bytes.HasPrefix(content, []byte("\uFEFF")) {
		p.bom = len("\uFEFF")
		p.i = p.bom
	}
	var out []binding
	for p.i < len(p.b) {
		p.i = p.skip(p.i, isSpace)
		if p.i >= len(p.b) {
			break
		}
		start := p.lineStart(p.i)
		b := binding{start: start, line: p.lineOf(start)}
		b.ok = p.statement(&b)
		if !b.ok {
			p.restOfLine()
		}
		b.end = p.i
		out = append(out, b)
	}
	return out
}

type parser struct {
	b   []byte
	i   int
	bom int

	// lineOf's memory, so counting stays linear.
	lineAt, lineNo int
}

// statement parses one statement at p.i into b, leaving p.i after its line
// break; false means a syntax error, with p.i where it was found.
func (p *parser) statement(b *binding) bool {
	if rest := p.b[p.i:]; bytes.HasPrefix(rest, []byte("export")) {
		if j := p.skip(p.i+len("export"), isBlank); j > p.i+len("export") {
			p.i = j
		}
	}

	switch p.peek() {
	case '#':
		// A comment: no key.
	case '\'':
		end := bytes.IndexByte(p.b[p.i+1:], '\'')
		if end <= 0 {
			return false
		}
		b.key = string(p.b[p.i+1 : p.i+1+end])
		p.i += end + 2
	default:
		j := p.skip(p.i, func(r rune) bool { return r != '=' && r != '#' && !isSpace(r) })
		if j == p.i {
			return false
		}
		b.key = string(p.b[p.i:j])
		p.i = j
	}

	p.i = p.skip(p.i, isBlank)
	if p.peek() == '=' {
		b.hasValue = true
		j := p.skip(p.i+1, isBlank)
		spaced := j > p.i+1
		p.i = j
		v, ok := p.value(spaced)
		if !ok {
			return false
		}
		b.value = v
	}

	// An optional comment, then the end of the line.
	if j := p.skip(p.i, isBlank); j < len(p.b) && p.b[j] == '#' {
		p.i = p.skip(j, notLineBreak)
	}
	p.i = p.skip(p.i, isBlank)
	switch {
	case p.i == len(p.b):
	case bytes.HasPrefix(p.b[p.i:], []byte("\r\n")):
		p.i += 2
	case p.b[p.i] == '\n' || p.b[p.i] == '\r':
		p.i++
	default:
		return false
	}
	return true
}

func (p *parser) value(spaced bool) (string, bool) {
	switch q := p.peek(); q {
	case '\'', '"':
		end, ok := closingQuote(p.b[p.i:], byte(q))
		if !ok {
			return "", false
		}
		raw := p.b[p.i+1 : p.i+end]
		p.i += end + 1
		return unescape(raw, q == '"'), true
	case eof, '\n', '\r':
		return "", true
	}
	j := p.skip(p.i, notLineBreak)
	part := string(p.b[p.i:j])
	p.i = j
	if spaced && strings.HasPrefix(part, "#") {
		// KEY=  # comment: an empty value.
		return "", true
	}
	return strings.TrimRightFunc(cutComment(part), isSpace), true
}

// closingQuote finds the quote closing the string that s starts with, as
// the regular expression q((?:\\q|[^q])*)q finds it, backtracking included:
// when no unescaped quote follows, the last escaped one closes the string.
func closingQuote(s []byte, q byte) (int, bool) {
	lastEscaped := -1
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == q:
			lastEscaped = i + 1
			i++
		case s[i] == q:
			return i, true
		}
	}
	if lastEscaped > 0 {
		return lastEscaped, true
	}
	return 0, false
}

// unescape decodes what python-dotenv decodes: \\ and \' in single quotes,
// and also \" \a \b \f \n \r \t \v in double quotes.
func unescape(raw []byte, double bool) string {
	var sb strings.Builder
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\\' && i+1 < len(raw) {
			if r, ok := escape(raw[i+1], double); ok {
				sb.WriteByte(r)
				i++
				continue
			}
		}
		sb.WriteByte(raw[i])
	}
	return sb.String()
}

func escape(c byte, double bool) (byte, bool) {
	switch c {
	case '\\', '\'':
		return c, true
	}
	if !double {
		return 0, false
	}
	switch c {
	case '"':
		return '"', true
	case 'a':
		return '\a', true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case 't':
		return '\t', true
	case 'v':
		return '\v', true
	}
	return 0, false
}

// cutComment drops an inline comment from an unquoted value: the first run
// of white space followed by '#', and all after it.
func cutComment(s string) string {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !isSpace(r) {
			i += n
			continue
		}
		j := i + n
		for j < len(s) {
			r, n := utf8.DecodeRuneInString(s[j:])
			if !isSpace(r) {
				break
			}
			j += n
		}
		if j < len(s) && s[j] == '#' {
			return s[:i]
		}
		i = j
	}
	return s
}

// restOfLine skips what is left of a line python-dotenv could not parse,
// and one line break character (of "\r\n", only the "\r").
func (p *parser) restOfLine() {
	p.i = p.skip(p.i, notLineBreak)
	if p.i < len(p.b) {
		p.i++
	}
}

// eof is what peek returns at the end of the input.
const eof = -1

func (p *parser) peek() rune {
	if p.i >= len(p.b) {
		return eof
	}
	r, _ := utf8.DecodeRune(p.b[p.i:])
	return r
}

// skip returns the first index from i whose rune does not satisfy f.
func (p *parser) skip(i int, f func(rune) bool) int {
	for i < len(p.b) {
		r, n := utf8.DecodeRune(p.b[i:])
		if !f(r) {
			break
		}
		i += n
	}
	return i
}

// lineStart returns where the line holding i starts.
func (p *parser) lineStart(i int) int {
	if j := bytes.LastIndexAny(p.b[p.bom:i], "\r\n"); j >= 0 {
		return p.bom + j + 1
	}
	return p.bom
}

// lineOf returns the 1-based number of the line starting at i, counting
// "\r\n", "\n" and "\r" as line breaks. Calls must come with growing i.
func (p *parser) lineOf(i int) int {
	if p.lineNo == 0 {
		p.lineNo = 1
	}
	for ; p.lineAt < i; p.lineAt++ {
		switch p.b[p.lineAt] {
		case '\n':
			p.lineNo++
		case '\r':
			if p.lineAt+1 >= len(p.b) || p.b[p.lineAt+1] != '\n' {
				p.lineNo++
			}
		}
	}
	return p.lineNo
}

// isSpace is Python's \s for str patterns.
func isSpace(r rune) bool {
	return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f
}

// isBlank is white space other than a line break: Python's [^\S\r\n].
func isBlank(r rune) bool {
	return isSpace(r) && r != '\r' && r != '\n'
}

func notLineBreak(r rune) bool {
	return r != '\r' && r != '\n'
}
