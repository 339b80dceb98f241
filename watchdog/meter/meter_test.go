package meter

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"strings"
	"testing"

	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/pricing"
	"github.com/keycap/keycap/watchdog/problem"
)

func MustMeter(tb testing.TB) *Meter {
	tb.Helper()
	t, err := pricing.Load(nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &Meter{Prices: t, ConfigPath: "/home/u/.config/keycap/config.toml"}
}

func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		method, path string
		want         Endpoint
	}{
		{"POST", "/chat/completions", Chat},
		{"POST", "/audio/speech", Speech},
		{"POST", "/images/generations/", ImageGenerate},
		{"GET", "/models", Other},
		{"POST", "/files", Other},
	} {
		if got := Classify(tt.method, tt.path); got != tt.want {
			t.Errorf("Classify(%s %s) = %s, want %s", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestPlanEstimates(t *testing.T) {
	m := MustMeter(t)
	long := strings.Repeat("# Chat log. The assistant said hello. ", 100)
	for _, tt := range []struct {
		name     string
		ep       Endpoint
		body     string
		min, max money.USD
		exact    bool
	}{
		// 4096 chars × $15/M = 61,440 µ$, exactly.
		{"tts-1 by character", Speech, `{"model":"tts-1","voice":"alloy","input":"` + strings.Repeat("a", 4096) + `"}`, 61_440, 61_440, true},
		{"tts-1 counts runes", Speech, `{"model":"tts-1","voice":"alloy","input":"héllo"}`, 75, 75, true},
		{"dall-e-3 hd wide", ImageGenerate, `{"model":"dall-e-3","prompt":"London","size":"1792x1024","quality":"hd"}`, 119_000, 121_000, true},
		{"dall-e-2 default", ImageGenerate, `{"prompt":"x","n":2,"size":"256x256"}`, 31_000, 33_000, true},
		// Output bound: 100 tokens × $0.60/M plus a small prompt.
		{"chat bounded output", Chat, `{"model":"gpt-4o-mini","max_completion_tokens":100,"messages":[{"role":"user","content":"hi"}]}`, 60, 80, false},
		// No bound: the model's 16,384 max output × $10/M = $0.16384 plus prompt.
		{"chat unbounded", Chat, `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`, 163_840, 164_200, false},
		{"chat n=3", Chat, `{"model":"gpt-4o-mini","max_tokens":100,"n":3,"messages":[{"role":"user","content":"hi"}]}`, 180, 200, false},
		{"embeddings", Embeddings, `{"model":"text-embedding-3-small","input":["` + long + `"]}`, 10, 40, false},
		{"responses", Responses, `{"model":"gpt-4o-mini","input":"hi","max_output_tokens":50}`, 30, 45, false},
		{"moderation is free", Moderations, `{"model":"omni-moderation-latest","input":"x"}`, 0, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := m.Plan(tt.ep, "application/json", []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if p.Estimate < tt.min || p.Estimate > tt.max || p.Exact != tt.exact {
				t.Errorf("estimate = %d µ$ (exact %v), want %d..%d (exact %v)", p.Estimate, p.Exact, tt.min, tt.max, tt.exact)
			}
		})
	}
}

func TestPlanRefusals(t *testing.T) {
	m := MustMeter(t)
	for _, tt := range []struct {
		name, body, code, inMsg string
	}{
		{"malformed", `{"model":`, problem.Invalid, "not valid JSON"},
		{"empty", ``, problem.Invalid, "empty"},
		{"no model", `{"messages":[{"role":"user","content":"x"}]}`, problem.Invalid, "no model"},
		{"unknown model", `{"model":"gpt-99","messages":[{"role":"user","content":"x"}]}`, problem.UnknownPrice, `[prices."gpt-99"]`},
		{"wrong type", `{"model":"gpt-4o","messages":"x","n":"two"}`, problem.Invalid, "should be"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Plan(Chat, "application/json", []byte(tt.body))
			if got := problem.CodeOf(err); got != tt.code {
				t.Fatalf("code = %q, want %q (%v)", got, tt.code, err)
			}
			if !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("message %q lacks %q", err.Error(), tt.inMsg)
			}
		})
	}
}

func TestStreamAsksForUsage(t *testing.T) {
	m := MustMeter(t)
	p, err := m.Plan(Chat, "", []byte(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	json.Unmarshal(p.Body, &got)
	if !got.StreamOptions.IncludeUsage || !p.StripUsage {
		t.Errorf("body %s, strip %v: want include_usage added and stripped", p.Body, p.StripUsage)
	}
	p, _ = m.Plan(Chat, "", []byte(`{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[]}`))
	if p.StripUsage {
		t.Errorf("client asked for usage; it must not be stripped")
	}
}

const chatStream = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n" +
	"data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15}}\n\n" +
	"data: [DONE]\n\n"

func TestStreamUsageStrippedWhenNotAsked(t *testing.T) {
	m := MustMeter(t)
	for _, strip := range []bool{true, false} {
		p, _ := m.Plan(Chat, "", []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}`))
		p.Stream, p.StripUsage = true, strip
		var got Reading
		var complete bool
		b := p.WrapBody(io.NopCloser(iotestOneByte(chatStream)), true, func(r Reading, c bool) { got, complete = r, c })
		out, err := io.ReadAll(b)
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
		if !got.Found || got.Units.Input != 10 || got.Units.Output != 5 || !complete {
			t.Errorf("reading = %+v complete %v", got, complete)
		}
		if has := strings.Contains(string(out), `"prompt_tokens"`); has == strip {
			t.Errorf("strip=%v but usage chunk present=%v:\n%s", strip, has, out)
		}
		if !strings.HasSuffix(string(out), "data: [DONE]\n\n") {
			t.Errorf("stream end lost: %q", out)
		}
	}
}

func iotestOneByte(s string) io.Reader { return &oneByte{s: s} }

type oneByte struct{ s string }

func (o *oneByte) Read(p []byte) (int, error) {
	if o.s == "" {
		return 0, io.EOF
	}
	p[0] = o.s[0]
	o.s = o.s[1:]
	return 1, nil
}

func TestStreamAbortedMidwayIsChargedAtEstimate(t *testing.T) {
	m := MustMeter(t)
	p, _ := m.Plan(Chat, "", []byte(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"x"}]}`))
	var got Reading
	var complete = true
	b := p.WrapBody(io.NopCloser(strings.NewReader(chatStream[:60])), true, func(r Reading, c bool) { got, complete = r, c })
	buf := make([]byte, 10)
	b.Read(buf)
	b.Close()
	s := p.Settle(200, true, complete, got)
	if complete || s.Exact || s.Cost != p.Estimate || !strings.Contains(s.Note, "stream ended") {
		t.Errorf("settlement %+v (complete %v), want the estimate %d, flagged", s, complete, p.Estimate)
	}
}

func TestNonStreamUsageFoundAfterLargeData(t *testing.T) {
	m := MustMeter(t)
	p, _ := m.Plan(Embeddings, "", []byte(`{"model":"text-embedding-3-small","input":"hello"}`))
	big := `{"object":"list","data":[{"embedding":[` + strings.Repeat("0.1,", 200_000) + `0.2],"usage":{"prompt_tokens":999}}],"model":"m","usage":{"prompt_tokens":7,"total_tokens":7}}`
	var got Reading
	b := p.WrapBody(io.NopCloser(strings.NewReader(big)), false, func(r Reading, c bool) { got = r })
	io.Copy(io.Discard, b)
	if !got.Found || got.Units.Input != 7 {
		t.Errorf("reading = %+v, want the top-level usage (7 tokens)", got)
	}
}

func TestSettle(t *testing.T) {
	m := MustMeter(t)
	p, _ := m.Plan(Chat, "", []byte(`{"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":"x"}]}`))
	found := Reading{Found: true, Units: Units{Tokens: pricing.Tokens{Input: 1000, Output: 500}}}
	for _, tt := range []struct {
		name     string
		status   int
		sent     bool
		complete bool
		r        Reading
		want     money.USD
		exact    bool
	}{
		{"usage", 200, true, true, found, 450, true},
		{"never sent", 0, false, false, Reading{}, 0, true},
		{"refused 429", 429, true, true, Reading{}, 0, true},
		{"server error", 500, true, true, Reading{}, p.Estimate, false},
		{"no usage", 200, true, true, Reading{}, p.Estimate, false},
	} {
		s := p.Settle(tt.status, tt.sent, tt.complete, tt.r)
		if s.Cost != tt.want || s.Exact != tt.exact {
			t.Errorf("%s: settle = %d (exact %v), want %d (exact %v)", tt.name, s.Cost, s.Exact, tt.want, tt.exact)
		}
	}
}

func TestTranscriptionFromWAV(t *testing.T) {
	m := MustMeter(t)
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField("model", "whisper-1")
	fw, _ := w.CreateFormFile("file", "a.wav")
	fw.Write(wav(16000, 2, 10)) // 10 s at 16 kHz 16-bit mono
	w.Close()
	p, err := m.Plan(Transcriptions, w.FormDataContentType(), buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	// 10 s × $0.0001 = 1,000 µ$, exact from the header
	if got, want := p.Estimate, money.USD(1_000); got != want || !p.Exact {
		t.Errorf("estimate = %d, want %d", got, want)
	}
}

func wav(rate, bytesPerSample, seconds int) []byte {
	n := rate * bytesPerSample * seconds
	b := make([]byte, 44+n)
	copy(b, "RIFF")
	le32(b[4:], uint32(36+n))
	copy(b[8:], "WAVEfmt ")
	le32(b[16:], 16)
	b[20], b[22] = 1, 1
	le32(b[24:], uint32(rate))
	le32(b[28:], uint32(rate*bytesPerSample))
	b[32], b[34] = byte(bytesPerSample), 16
	copy(b[36:], "data")
	le32(b[40:], uint32(n))
	return b
}

func le32(b []byte, v uint32) { b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24) }
