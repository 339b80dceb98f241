package meter

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"sync"
)

// maxEvent bounds how much of one SSE event is held back while it is
// incomplete; a larger event is passed through unparsed.
const maxEvent = 8 << 20

// WrapBody returns a body that passes rc through unchanged (except for a
// usage chunk the client did not ask for) while reading the usage it
// reports. done is called once, when the body ends or is closed, with what
// was found and whether the whole body was read.
func (p *Plan) WrapBody(rc io.ReadCloser, sse bool, done func(r Reading, complete bool)) io.ReadCloser {
	b := &Body{rc: rc, plan: p, sse: sse, done: done}
	b.scan.want = topKeys
	return b
}

var topKeys = map[string]bool{"usage": true, "duration": true, "model": true}

// Body is a metered response body; see WrapBody.
type Body struct {
	rc      io.ReadCloser
	plan    *Plan
	sse     bool
	scan    topScanner
	reading Reading
	once    sync.Once
	done    func(Reading, bool)

	sawDone bool
	buf     []byte
	partial []byte
	pending []byte
	err     error
}

// Read implements io.Reader.
func (b *Body) Read(p []byte) (int, error) {
	if !b.sse {
		n, err := b.rc.Read(p)
		b.scan.write(p[:n])
		if err != nil {
			b.finish(err == io.EOF)
		}
		return n, err
	}
	for len(b.pending) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		if b.buf == nil {
			b.buf = make([]byte, 32<<10)
		}
		n, err := b.rc.Read(b.buf)
		b.partial = append(b.partial, b.buf[:n]...)
		b.extract()
		if err != nil {
			b.pending = append(b.pending, b.partial...)
			b.partial = nil
			b.err = err
			// A stream is whole only if it reached its end marker.
			b.finish(err == io.EOF && (b.sawDone || b.reading.Found))
		}
	}
	n := copy(p, b.pending)
	b.pending = b.pending[n:]
	return n, nil
}

// Close closes the upstream body; a body closed before its end settles as
// incomplete.
func (b *Body) Close() error {
	err := b.rc.Close()
	b.finish(false)
	return err
}

func (b *Body) finish(complete bool) {
	b.once.Do(func() {
		if !b.sse {
			if m, ok := b.scan.found["model"]; ok {
				json.Unmarshal(m, &b.reading.Model)
			}
			if u, ok := b.scan.found["usage"]; ok {
				b.reading.add(b.plan.Endpoint, u)
			}
			if d, ok := b.scan.found["duration"]; ok && !b.reading.Found && (b.plan.Endpoint == Transcriptions || b.plan.Endpoint == Translations) {
				if s, err := strconv.ParseFloat(string(bytes.TrimSpace(d)), 64); err == nil && s >= 0 {
					b.reading = Reading{Units: Units{Seconds: s}, Found: true, Model: b.reading.Model}
				}
			}
		}
		if b.done != nil {
			b.done(b.reading, complete)
		}
	})
}

func (b *Body) extract() {
	for {
		i, sep := eventEnd(b.partial)
		if i < 0 {
			if len(b.partial) > maxEvent {
				b.pending = append(b.pending, b.partial...)
				b.partial = b.partial[:0]
			}
			return
		}
		ev := b.partial[:i+sep]
		if b.event(ev) {
			b.pending = append(b.pending, ev...)
		}
		b.partial = append(b.partial[:0], b.partial[i+sep:]...)
	}
}

func eventEnd(p []byte) (int, int) {
	i := bytes.Index(p, []byte("\n\n"))
	j := bytes.Index(p, []byte("\r\n\r\n"))
	switch {
	case j >= 0 && (i < 0 || j < i):
		return j, 4
	case i >= 0:
		return i, 2
	}
	return -1, 0
}

// event reads one SSE event and reports whether to pass it to the client.
func (b *Body) event(ev []byte) bool {
	data := SSEData(ev)
	if bytes.Equal(data, []byte("[DONE]")) {
		b.sawDone = true
		return true
	}
	if !bytes.Contains(data, []byte(`"usage"`)) {
		return true
	}
	var e struct {
		Usage    json.RawMessage `json:"usage"`
		Response *struct {
			Usage json.RawMessage `json:"usage"`
		} `json:"response"`
		Choices *[]json.RawMessage `json:"choices"`
	}
	if json.Unmarshal(data, &e) != nil {
		return true
	}
	u := e.Usage
	if e.Response != nil && isSet(e.Response.Usage) {
		u = e.Response.Usage
	}
	if !isSet(u) {
		return true
	}
	b.reading.add(b.plan.Endpoint, u)
	return !(b.plan.StripUsage && e.Choices != nil && len(*e.Choices) == 0)
}

// SSEData returns the data of one server-sent event: its data lines, joined
// by newlines, without the "data:" prefix.
func SSEData(ev []byte) []byte {
	var out []byte
	first := true
	for len(ev) > 0 {
		line := ev
		if i := bytes.IndexByte(ev, '\n'); i >= 0 {
			line, ev = ev[:i], ev[i+1:]
		} else {
			ev = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if !bytes.HasPrefix(line, []byte("data:")) {
			continue
		}
		line = bytes.TrimPrefix(line[5:], []byte(" "))
		if !first {
			out = append(out, '\n')
		}
		out = append(out, line...)
		first = false
	}
	return out
}

// topScanner finds the values of chosen keys of a top-level JSON object as
// its bytes pass, without holding the document.
type topScanner struct {
	want                   map[string]bool
	depth                  int
	inStr, esc             bool
	keyPos, inKey, haveKey bool
	key                    []byte
	capturing              bool
	capKey                 string
	val                    []byte
	found                  map[string][]byte
}

const maxValue = 1 << 20

func (s *topScanner) write(p []byte) {
	for _, c := range p {
		if s.capturing && len(s.val) <= maxValue {
			s.val = append(s.val, c)
		}
		if s.inStr {
			switch {
			case s.esc:
				s.esc = false
			case c == '\\':
				s.esc = true
			case c == '"':
				s.inStr = false
				if s.inKey {
					s.inKey, s.haveKey = false, true
				}
				continue
			}
			if s.inKey && len(s.key) < 64 {
				s.key = append(s.key, c)
			}
			continue
		}
		switch c {
		case '"':
			s.inStr = true
			if s.depth == 1 && s.keyPos {
				s.inKey, s.keyPos, s.key = true, false, s.key[:0]
			}
		case ':':
			if s.depth == 1 && s.haveKey {
				s.haveKey = false
				if k := string(s.key); s.want[k] {
					s.capturing, s.capKey, s.val = true, k, s.val[:0]
				}
			}
		case '{', '[':
			s.depth++
			if s.depth == 1 && c == '{' {
				s.keyPos = true
			}
		case '}', ']':
			if s.depth == 1 {
				s.end()
			}
			s.depth--
		case ',':
			if s.depth == 1 {
				s.end()
				s.keyPos = true
			}
		}
	}
}

func (s *topScanner) end() {
	if !s.capturing {
		return
	}
	s.capturing = false
	if len(s.val) == 0 || len(s.val) > maxValue {
		return
	}
	if s.found == nil {
		s.found = map[string][]byte{}
	}
	s.found[s.capKey] = bytes.TrimSpace(append([]byte(nil), s.val[:len(s.val)-1]...))
}
