package standin_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/standin"
	"github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
	openai "github.com/sashabaranov/go-openai"
)

const testKey = "sk-test-standin-0000"

// replyText mirrors the stand-in's fixed reply.
const replyText = "This is keycap's stand-in for the OpenAI API: no model was called, and this reply cost nothing."

func TestMain(m *testing.M) {
	tiktoken.SetBpeLoader(tiktoken_loader.NewOfflineLoader())
	os.Exit(m.Run())
}

// fixture is a stand-in served over HTTP, with a go-openai client for it.
type fixture struct {
	s      *standin.Server
	c      *openai.Client
	url    string // the server's root, without /v1
	prices map[string]map[string]any
}

func mustStart(t *testing.T) fixture {
	t.Helper()
	prices := mustPrices(t)
	s := standin.New(standin.Options{APIKey: testKey, Prices: prices})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	cfg := openai.DefaultConfig(testKey)
	cfg.BaseURL = ts.URL + "/v1"
	return fixture{s: s, c: openai.NewClientWithConfig(cfg), url: ts.URL, prices: prices}
}

var loadPrices = sync.OnceValues(func() (map[string]map[string]any, error) {
	b, err := os.ReadFile("../pricing/litellm/model_prices.json" /* the embedded copy of shared/pricing/litellm_openai_subset.json */)
	if err != nil {
		return nil, err
	}
	var prices map[string]map[string]any
	return prices, json.Unmarshal(b, &prices)
})

// mustPrices loads the real LiteLLM price entries from shared/.
func mustPrices(tb testing.TB) map[string]map[string]any {
	tb.Helper()
	prices, err := loadPrices()
	if err != nil {
		tb.Fatalf("load prices: %v", err)
	}
	return prices
}

func rate(prices map[string]map[string]any, model, field string) float64 {
	v, _ := prices[model][field].(float64)
	return v
}

func tokens(model, s string) int {
	enc, err := tiktoken.EncodingForModel(model)
	if err != nil {
		enc, _ = tiktoken.GetEncoding("o200k_base")
	}
	return len(enc.EncodeOrdinary(s))
}

// mustDo sends a raw request with the test key and returns the status, headers and body.
func (f fixture) mustDo(t *testing.T, method, path, contentType string, body io.Reader) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// mustJSON posts body as JSON and decodes the answer into a map.
func (f fixture) mustJSON(t *testing.T, path, body string) (int, map[string]any) {
	t.Helper()
	status, _, b := f.mustDo(t, http.MethodPost, path, "application/json", strings.NewReader(body))
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("POST %s: answer is not JSON: %v: %s", path, err, b)
	}
	return status, m
}

// lastCharge returns the most recent charge.
func (f fixture) lastCharge(t *testing.T) standin.Charge {
	t.Helper()
	cs := f.s.Charges()
	if len(cs) == 0 {
		t.Fatal("no charges")
	}
	return cs[len(cs)-1]
}

func wantAPIError(t *testing.T, err error, status int, param string) *openai.APIError {
	t.Helper()
	apiErr, ok := errors.AsType[*openai.APIError](err)
	if !ok {
		t.Fatalf("err = %v, want an *openai.APIError", err)
	}
	if got := apiErr.HTTPStatusCode; got != status {
		t.Errorf("status = %d, want %d", got, status)
	}
	if param != "" && (apiErr.Param == nil || *apiErr.Param != param) {
		t.Errorf("param = %v, want %q", apiErr.Param, param)
	}
	return apiErr
}

func chatPromptTokens(model string, msgs ...openai.ChatCompletionMessage) int {
	n := 3
	for _, m := range msgs {
		n += 3 + tokens(model, m.Role) + tokens(model, m.Content)
	}
	return n
}

func TestChatCompletion(t *testing.T) {
	f := mustStart(t)
	msgs := []openai.ChatCompletionMessage{{Role: "system", Content: "You are terse."}, {Role: "user", Content: "Say hello."}}
	full := tokens("gpt-4o", replyText)
	tests := []struct {
		name          string
		req           openai.ChatCompletionRequest
		wantChoices   int
		wantVisible   int // visible completion tokens per choice
		wantReasoning bool
		wantFinish    openai.FinishReason
	}{
		{"plain", openai.ChatCompletionRequest{Model: "gpt-4o"}, 1, full, false, openai.FinishReasonStop},
		{"n=3", openai.ChatCompletionRequest{Model: "gpt-4o-mini", N: 3}, 3, full, false, openai.FinishReasonStop},
		{"max_completion_tokens", openai.ChatCompletionRequest{Model: "gpt-4o", MaxCompletionTokens: 5}, 1, 5, false, openai.FinishReasonLength},
		{"reasoning", openai.ChatCompletionRequest{Model: "o3-mini"}, 1, full, true, openai.FinishReasonStop},
		{"reasoning uses the whole limit", openai.ChatCompletionRequest{Model: "gpt-5", MaxCompletionTokens: 10}, 1, 0, true, openai.FinishReasonLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Messages = msgs
			resp, err := f.c.CreateChatCompletion(context.Background(), tt.req)
			if err != nil {
				t.Fatalf("CreateChatCompletion: %v", err)
			}
			if got, want := len(resp.Choices), tt.wantChoices; got != want {
				t.Fatalf("choices = %d, want %d", got, want)
			}
			u := resp.Usage
			reasoning := u.CompletionTokensDetails.ReasoningTokens
			if got, want := reasoning > 0, tt.wantReasoning; got != want {
				t.Errorf("reasoning tokens = %d, want some: %v", reasoning, want)
			}
			for _, c := range resp.Choices {
				if got, want := tokens(tt.req.Model, c.Message.Content), tt.wantVisible; got != want {
					t.Errorf("choice %d has %d tokens (%q), want %d", c.Index, got, c.Message.Content, want)
				}
				if got, want := c.FinishReason, tt.wantFinish; got != want {
					t.Errorf("finish_reason = %q, want %q", got, want)
				}
			}
			if got, want := u.PromptTokens, chatPromptTokens(tt.req.Model, msgs...); got != want {
				t.Errorf("prompt_tokens = %d, want %d", got, want)
			}
			if got, want := u.CompletionTokens, tt.wantChoices*tt.wantVisible+reasoning; got != want {
				t.Errorf("completion_tokens = %d, want %d", got, want)
			}
			if limit := tt.req.MaxCompletionTokens; limit > 0 && u.CompletionTokens > limit {
				t.Errorf("completion_tokens = %d, over the limit %d", u.CompletionTokens, limit)
			}
			if got, want := u.TotalTokens, u.PromptTokens+u.CompletionTokens; got != want {
				t.Errorf("total_tokens = %d, want %d", got, want)
			}
		})
	}
	// go-openai deprecates max_tokens, but older clients still send it.
	_, m := f.mustJSON(t, "/v1/chat/completions", `{"model":"gpt-4.1","max_tokens":3,"messages":[{"role":"user","content":"Hi"}]}`)
	if got, want := m["usage"].(map[string]any)["completion_tokens"], 3.0; got != want {
		t.Errorf("completion_tokens with max_tokens 3 = %v, want %v", got, want)
	}
}

func TestChatCompletionStream(t *testing.T) {
	f := mustStart(t)
	req := openai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "Hi"}}}
	want, err := f.c.CreateChatCompletion(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for _, includeUsage := range []bool{false, true} {
		req.Stream = true
		req.StreamOptions = nil
		if includeUsage {
			req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
		}
		stream, err := f.c.CreateChatCompletionStream(context.Background(), req)
		if err != nil {
			t.Fatalf("CreateChatCompletionStream: %v", err)
		}
		var text strings.Builder
		var usage []*openai.Usage
		var finish openai.FinishReason
		for {
			chunk, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("Recv: %v", err)
			}
			if chunk.Usage != nil {
				usage = append(usage, chunk.Usage)
				if len(chunk.Choices) != 0 {
					t.Errorf("the usage chunk has %d choices, want none", len(chunk.Choices))
				}
			}
			for _, c := range chunk.Choices {
				text.WriteString(c.Delta.Content)
				if c.FinishReason != "" {
					finish = c.FinishReason
				}
			}
		}
		stream.Close()
		if got, want := text.String(), replyText; got != want {
			t.Errorf("streamed text = %q, want %q", got, want)
		}
		if got, want := finish, openai.FinishReasonStop; got != want {
			t.Errorf("finish_reason = %q, want %q", got, want)
		}
		if !includeUsage {
			if len(usage) != 0 {
				t.Errorf("got %d usage chunks without include_usage, want none", len(usage))
			}
			continue
		}
		if len(usage) != 1 {
			t.Fatalf("got %d usage chunks with include_usage, want 1", len(usage))
		}
		if got, want := *usage[0], want.Usage; got.PromptTokens != want.PromptTokens || got.CompletionTokens != want.CompletionTokens || got.TotalTokens != want.TotalTokens {
			t.Errorf("streamed usage = %+v, want %+v", got, want)
		}
	}
}

// TestPromptCache sends a long prompt twice: the second time most of it is
// cached, in steps of 128 tokens from 1024, and billed at the cache price.
func TestPromptCache(t *testing.T) {
	f := mustStart(t)
	req := openai.ChatCompletionRequest{Model: "gpt-4o", Messages: []openai.ChatCompletionMessage{
		{Role: "system", Content: strings.Repeat("Answer in the voice of a patient librarian. ", 150)},
		{Role: "user", Content: "Which shelf?"}}}
	var cached []int
	for range 2 {
		resp, err := f.c.CreateChatCompletion(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		u := resp.Usage
		cached = append(cached, u.PromptTokensDetails.CachedTokens)
		c := f.lastCharge(t)
		want := float64(u.PromptTokens-u.PromptTokensDetails.CachedTokens)*rate(f.prices, "gpt-4o", "input_cost_per_token") +
			float64(u.PromptTokensDetails.CachedTokens)*rate(f.prices, "gpt-4o", "cache_read_input_token_cost") +
			float64(u.CompletionTokens)*rate(f.prices, "gpt-4o", "output_cost_per_token")
		if math.Abs(c.USD-want) > 1e-12 {
			t.Errorf("charge = %v, want %v", c.USD, want)
		}
		if u.PromptTokens < 1100 {
			t.Fatalf("prompt_tokens = %d, want a prompt over 1100 tokens", u.PromptTokens)
		}
		if got, want := cached[len(cached)-1], 0; len(cached) == 2 {
			want = 1024 + (u.PromptTokens-1024)/128*128
			if got != want {
				t.Errorf("cached_tokens on the repeat = %d, want %d", got, want)
			}
		} else if got != want {
			t.Errorf("cached_tokens the first time = %d, want %d", got, want)
		}
	}
}

func TestResponses(t *testing.T) {
	f := mustStart(t)
	tests := []struct {
		name       string
		req        openai.CreateResponseRequest
		wantStatus openai.ResponseStatus
	}{
		{"string input", openai.CreateResponseRequest{Model: "gpt-4.1", Input: "Hello", Instructions: "Be brief."}, "completed"},
		{"item input", openai.CreateResponseRequest{Model: "gpt-4o", Input: []any{map[string]any{"role": "user", "content": []any{map[string]any{"type": "input_text", "text": "Hello"}}}}}, "completed"},
		{"reasoning", openai.CreateResponseRequest{Model: "o4-mini", Input: "Hello"}, "completed"},
		{"max_output_tokens", openai.CreateResponseRequest{Model: "gpt-4o", Input: "Hello", MaxOutputTokens: 16}, "incomplete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := f.c.CreateResponse(context.Background(), tt.req)
			if err != nil {
				t.Fatalf("CreateResponse: %v", err)
			}
			if got, want := resp.Status, tt.wantStatus; got != want {
				t.Errorf("status = %q, want %q", got, want)
			}
			u := resp.Usage
			if u == nil || u.InputTokensDetails == nil || u.OutputTokensDetails == nil {
				t.Fatalf("usage = %+v, want it with details", u)
			}
			if got, want := u.TotalTokens, u.InputTokens+u.OutputTokens; got != want || u.InputTokens == 0 {
				t.Errorf("usage = %+v, want input tokens and total = %d", u, want)
			}
			if tt.req.MaxOutputTokens > 0 && u.OutputTokens != tt.req.MaxOutputTokens {
				t.Errorf("output_tokens = %d, want the limit %d", u.OutputTokens, tt.req.MaxOutputTokens)
			}
			c := f.lastCharge(t)
			if got, want := c.Units.OutputTokens, u.OutputTokens; got != want {
				t.Errorf("charged output tokens = %d, want %d", got, want)
			}
			if got, want := c.Units.ReasoningTokens, u.OutputTokensDetails.ReasoningTokens; got != want {
				t.Errorf("charged reasoning tokens = %d, want %d", got, want)
			}
		})
	}
}

type sse struct {
	event string
	data  map[string]any
}

// readSSE reads server-sent events until the body ends, returning the events
// and the error that ended it (nil for a clean end).
func readSSE(body io.Reader) ([]sse, error) {
	var events []sse
	var cur sse
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			cur.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &cur.data); err != nil {
				return events, err
			}
		case line == "":
			events = append(events, cur)
			cur = sse{}
		}
	}
	return events, sc.Err()
}

func TestResponsesStream(t *testing.T) {
	f := mustStart(t)
	status, h, body := f.mustDo(t, http.MethodPost, "/v1/responses", "application/json",
		strings.NewReader(`{"model":"gpt-5-mini","input":"Hello","instructions":"Be brief.","stream":true}`))
	if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, Content-Type %q: %s", status, h.Get("Content-Type"), body)
	}
	events, err := readSSE(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	var text strings.Builder
	for i, e := range events {
		typ, _ := e.data["type"].(string)
		if typ != e.event {
			t.Errorf("event %d is named %q but has type %q", i, e.event, typ)
		}
		if got, want := e.data["sequence_number"], float64(i); got != want {
			t.Errorf("event %d (%s) has sequence_number %v", i, typ, got)
		}
		if typ == "response.output_text.delta" {
			text.WriteString(e.data["delta"].(string))
		}
		if len(types) == 0 || types[len(types)-1] != typ {
			types = append(types, typ)
		}
	}
	want := []string{"response.created", "response.in_progress",
		"response.output_item.added", "response.output_item.done", // the reasoning item
		"response.output_item.added", "response.content_part.added", "response.output_text.delta", "response.output_text.done",
		"response.content_part.done", "response.output_item.done", "response.completed"}
	if got := strings.Join(types, " "); got != strings.Join(want, " ") {
		t.Errorf("events:\n%s\nwant:\n%s", got, strings.Join(want, " "))
	}
	if got, want := text.String(), replyText; got != want {
		t.Errorf("deltas make %q, want %q", got, want)
	}
	last := events[len(events)-1].data["response"].(map[string]any)
	usage := last["usage"].(map[string]any)
	for _, k := range []string{"input_tokens", "output_tokens", "total_tokens"} {
		if _, ok := usage[k].(float64); !ok {
			t.Errorf("usage.%s = %v, want a number", k, usage[k])
		}
	}
	reasoning := usage["output_tokens_details"].(map[string]any)["reasoning_tokens"].(float64)
	if got, want := usage["output_tokens"].(float64), reasoning+float64(tokens("gpt-5-mini", replyText)); got != want || reasoning == 0 {
		t.Errorf("output_tokens = %v with %v reasoning, want %v", got, reasoning, want)
	}
	if got, want := f.lastCharge(t).Units.OutputTokens, int(usage["output_tokens"].(float64)); got != want {
		t.Errorf("charged output tokens = %d, want %d", got, want)
	}

	stream, err := f.c.CreateResponseStream(context.Background(), openai.CreateResponseRequest{Model: "gpt-4o", Input: "Hello"})
	if err != nil {
		t.Fatalf("CreateResponseStream: %v", err)
	}
	defer stream.Close()
	var final *openai.CreateResponseResponse
	for {
		e, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if e.Type == openai.ResponseStreamEventCompleted {
			final = e.Response
		}
	}
	if final == nil || final.Usage == nil || final.Usage.OutputTokens != tokens("gpt-4o", replyText) {
		t.Errorf("go-openai's last event = %+v, want response.completed with usage", final)
	}
}

func TestEmbeddings(t *testing.T) {
	f := mustStart(t)
	tests := []struct {
		name     string
		req      openai.EmbeddingRequest
		wantDims int
		wantN    int
	}{
		{"3-small", openai.EmbeddingRequest{Model: openai.SmallEmbedding3, Input: "The quick brown fox"}, 1536, 1},
		{"3-large", openai.EmbeddingRequest{Model: openai.LargeEmbedding3, Input: []string{"one", "two"}}, 3072, 2},
		{"ada-002", openai.EmbeddingRequest{Model: openai.AdaEmbeddingV2, Input: "ada"}, 1536, 1},
		{"dimensions", openai.EmbeddingRequest{Model: openai.LargeEmbedding3, Input: "short", Dimensions: 256}, 256, 1},
		{"base64", openai.EmbeddingRequest{Model: openai.SmallEmbedding3, Input: "b64", EncodingFormat: openai.EmbeddingEncodingFormatBase64}, 1536, 1},
		{"tokens", openai.EmbeddingRequest{Model: openai.SmallEmbedding3, Input: [][]int{{1212, 318, 257}, {1332, 13}}}, 1536, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := f.c.CreateEmbeddings(context.Background(), tt.req)
			if err != nil {
				t.Fatalf("CreateEmbeddings: %v", err)
			}
			if got, want := len(resp.Data), tt.wantN; got != want {
				t.Fatalf("embeddings = %d, want %d", got, want)
			}
			for _, e := range resp.Data {
				if got, want := len(e.Embedding), tt.wantDims; got != want {
					t.Errorf("dimensions = %d, want %d", got, want)
				}
				var norm float64
				for _, v := range e.Embedding {
					norm += float64(v) * float64(v)
				}
				if math.Abs(norm-1) > 1e-3 {
					t.Errorf("|embedding|² = %v, want 1", norm)
				}
			}
			if resp.Usage.PromptTokens == 0 || resp.Usage.TotalTokens != resp.Usage.PromptTokens {
				t.Errorf("usage = %+v, want prompt tokens = total tokens > 0", resp.Usage)
			}
		})
	}
	_, err := f.c.CreateEmbeddings(context.Background(), openai.EmbeddingRequest{Model: openai.AdaEmbeddingV2, Input: "x", Dimensions: 8})
	wantAPIError(t, err, http.StatusBadRequest, "dimensions")
}

func TestSpeech(t *testing.T) {
	f := mustStart(t)
	tests := []struct {
		format   openai.SpeechResponseFormat
		wantType string
		check    func([]byte) bool
	}{
		{openai.SpeechResponseFormatWav, "audio/wav", func(b []byte) bool {
			return string(b[:4]) == "RIFF" && string(b[8:16]) == "WAVEfmt " && binary.LittleEndian.Uint32(b[40:]) == uint32(len(b)-44)
		}},
		{openai.SpeechResponseFormatPcm, "audio/pcm", func(b []byte) bool { return len(b)%2 == 0 && len(b) > 0 }},
		{openai.SpeechResponseFormatMp3, "audio/mpeg", func(b []byte) bool { return everyFrame(b, 144, []byte{0xFF, 0xF3, 0x64, 0xC0}) }},
		{openai.SpeechResponseFormatAac, "audio/aac", func(b []byte) bool { return everyFrame(b, 11, []byte{0xFF, 0xF1}) }},
		{openai.SpeechResponseFormatFlac, "audio/flac", func(b []byte) bool { return string(b[:4]) == "fLaC" && b[4] == 0x80 }},
		{openai.SpeechResponseFormatOpus, "audio/opus", func(b []byte) bool { return string(b[:4]) == "OggS" && string(b[28:36]) == "OpusHead" }},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			resp, err := f.c.CreateSpeech(context.Background(), openai.CreateSpeechRequest{
				Model: openai.TTSModel1, Input: "Hello there.", Voice: openai.VoiceAlloy, ResponseFormat: tt.format})
			if err != nil {
				t.Fatalf("CreateSpeech: %v", err)
			}
			b, err := io.ReadAll(resp)
			resp.Close()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := resp.Header().Get("Content-Type"), tt.wantType; got != want {
				t.Errorf("Content-Type = %q, want %q", got, want)
			}
			if len(b) < 16 || !tt.check(b) {
				t.Errorf("not a %s file: % x", tt.format, b[:min(len(b), 48)])
			}
			if got, want := f.lastCharge(t).Units.Characters, len("Hello there."); got != want {
				t.Errorf("charged characters = %d, want %d", got, want)
			}
		})
	}
	_, err := f.c.CreateSpeech(context.Background(), openai.CreateSpeechRequest{
		Model: openai.TTSModel1, Input: strings.Repeat("a", 4097), Voice: openai.VoiceAlloy})
	wantAPIError(t, err, http.StatusBadRequest, "input")
}

// everyFrame reports whether b is whole frames of size bytes, each starting with header.
func everyFrame(b []byte, size int, header []byte) bool {
	if len(b) == 0 || len(b)%size != 0 {
		return false
	}
	for i := 0; i < len(b); i += size {
		if !bytes.HasPrefix(b[i:], header) {
			return false
		}
	}
	return true
}

// mustWAV returns seconds of 16 kHz mono 16-bit silence as a WAV file.
func mustWAV(seconds float64) []byte {
	data := make([]byte, int(seconds*16000)*2)
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+len(data)))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(16000), uint32(32000), uint16(2), uint16(16)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

// mustTranscribe posts a WAV of seconds to path and decodes the JSON answer.
func (f fixture) mustTranscribe(t *testing.T, path, model, format string, seconds float64) map[string]any {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	fw, _ := w.CreateFormFile("file", "speech.wav")
	fw.Write(mustWAV(seconds))
	w.WriteField("model", model)
	w.WriteField("response_format", format)
	w.Close()
	status, _, b := f.mustDo(t, http.MethodPost, path, w.FormDataContentType(), &body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || status != http.StatusOK {
		t.Fatalf("status %d, %v: %s", status, err, b)
	}
	return m
}

func TestTranscription(t *testing.T) {
	f := mustStart(t)
	resp, err := f.c.CreateTranscription(context.Background(), openai.AudioRequest{
		Model: openai.Whisper1, FilePath: "speech.wav", Reader: bytes.NewReader(mustWAV(2.5)), Format: openai.AudioResponseFormatVerboseJSON})
	if err != nil {
		t.Fatalf("CreateTranscription: %v", err)
	}
	if got, want := resp.Duration, 2.5; got != want {
		t.Errorf("duration = %v, want %v", got, want)
	}
	if resp.Text == "" || len(resp.Segments) == 0 {
		t.Errorf("transcription = %+v, want text and segments", resp)
	}
	for _, format := range []openai.AudioResponseFormat{openai.AudioResponseFormatText, openai.AudioResponseFormatSRT, openai.AudioResponseFormatVTT} {
		resp, err := f.c.CreateTranscription(context.Background(), openai.AudioRequest{
			Model: openai.Whisper1, FilePath: "speech.wav", Reader: bytes.NewReader(mustWAV(1)), Format: format})
		if err != nil || resp.Text == "" {
			t.Errorf("%s transcription = %q, %v", format, resp.Text, err)
		}
	}
	if _, err := f.c.CreateTranslation(context.Background(), openai.AudioRequest{
		Model: openai.Whisper1, FilePath: "speech.wav", Reader: bytes.NewReader(mustWAV(1))}); err != nil {
		t.Errorf("CreateTranslation: %v", err)
	}

	whisper := f.mustTranscribe(t, "/v1/audio/transcriptions", "whisper-1", "json", 2.5)
	if got, want := whisper["usage"], any(map[string]any{"type": "duration", "seconds": 3.0}); !jsonEqual(got, want) {
		t.Errorf("whisper-1 usage = %v, want %v", got, want)
	}
	tok := f.mustTranscribe(t, "/v1/audio/transcriptions", "gpt-4o-transcribe", "json", 6)
	usage, _ := tok["usage"].(map[string]any)
	details, _ := usage["input_token_details"].(map[string]any)
	if usage["type"] != "tokens" || details == nil || usage["input_tokens"] != details["audio_tokens"].(float64)+details["text_tokens"].(float64) ||
		usage["total_tokens"] != usage["input_tokens"].(float64)+usage["output_tokens"].(float64) {
		t.Errorf("gpt-4o-transcribe usage = %v, want consistent token usage", usage)
	}
	if c := f.lastCharge(t); c.Units.AudioTokens == 0 || float64(c.Units.AudioTokens) != details["audio_tokens"] {
		t.Errorf("charge = %+v, want the audio tokens of %v", c, usage)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func mustDecodePNG(t *testing.T, b []byte) {
	t.Helper()
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Errorf("not a PNG: %v", err)
	}
}

func TestImages(t *testing.T) {
	f := mustStart(t)
	ctx := context.Background()

	resp, err := f.c.CreateImage(ctx, openai.ImageRequest{Model: openai.CreateImageModelDallE3, Prompt: "a red fox", Size: openai.CreateImageSize1024x1024})
	if err != nil {
		t.Fatalf("CreateImage url: %v", err)
	}
	if len(resp.Data) != 1 || resp.Data[0].URL == "" || resp.Data[0].RevisedPrompt == "" {
		t.Fatalf("data = %+v, want one url with a revised prompt", resp.Data)
	}
	img, err := http.Get(resp.Data[0].URL) // image URLs need no key
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(img.Body)
	img.Body.Close()
	if got, want := img.Header.Get("Content-Type"), "image/png"; got != want || img.StatusCode != http.StatusOK {
		t.Errorf("GET url: status %d, Content-Type %q, want 200 %q", img.StatusCode, got, want)
	}
	mustDecodePNG(t, b)

	resp, err = f.c.CreateImage(ctx, openai.ImageRequest{Model: openai.CreateImageModelDallE2, Prompt: "a fox", N: 2,
		Size: openai.CreateImageSize512x512, ResponseFormat: openai.CreateImageResponseFormatB64JSON})
	if err != nil || len(resp.Data) != 2 {
		t.Fatalf("CreateImage b64 = %+v, %v; want 2 images", resp.Data, err)
	}
	for _, d := range resp.Data {
		b, err := base64.StdEncoding.DecodeString(d.B64JSON)
		if err != nil {
			t.Fatal(err)
		}
		mustDecodePNG(t, b)
	}

	resp, err = f.c.CreateImage(ctx, openai.ImageRequest{Model: openai.CreateImageModelGptImage1, Prompt: "a fox", Quality: "low"})
	if err != nil {
		t.Fatalf("CreateImage gpt-image-1: %v", err)
	}
	u := resp.Usage
	if u.OutputTokens == 0 || u.InputTokens != u.InputTokensDetails.TextTokens || u.TotalTokens != u.InputTokens+u.OutputTokens || resp.Data[0].B64JSON == "" {
		t.Errorf("gpt-image-1 answer = %+v, want b64 and consistent usage", resp)
	}

	edit, err := f.c.CreateEditImage(ctx, openai.ImageEditRequest{Image: openai.WrapReader(bytes.NewReader(b), "fox.png", "image/png"),
		Prompt: "add a hat", Model: openai.CreateImageModelGptImage1, N: 1})
	if err != nil {
		t.Fatalf("CreateEditImage: %v", err)
	}
	if edit.Usage.InputTokensDetails.ImageTokens == 0 {
		t.Errorf("edit usage = %+v, want image input tokens", edit.Usage)
	}
	vari, err := f.c.CreateVariImage(ctx, openai.ImageVariRequest{Image: openai.WrapReader(bytes.NewReader(b), "fox.png", "image/png"), N: 1})
	if err != nil || len(vari.Data) != 1 {
		t.Errorf("CreateVariImage = %+v, %v", vari, err)
	}

	_, err = f.c.CreateImage(ctx, openai.ImageRequest{Model: openai.CreateImageModelDallE3, Prompt: "two foxes", N: 2})
	wantAPIError(t, err, http.StatusBadRequest, "n")
}

func TestModelsAndModeration(t *testing.T) {
	f := mustStart(t)
	ctx := context.Background()
	list, err := f.c.ListModels(ctx)
	if err != nil || len(list.Models) == 0 {
		t.Fatalf("ListModels = %d models, %v", len(list.Models), err)
	}
	m, err := f.c.GetModel(ctx, "gpt-4o-2024-08-06")
	if err != nil || m.ID != "gpt-4o-2024-08-06" || m.Object != "model" {
		t.Errorf("GetModel = %+v, %v", m, err)
	}
	_, err = f.c.GetModel(ctx, "gpt-nonexistent")
	wantAPIError(t, err, http.StatusNotFound, "model")

	mod, err := f.c.Moderations(ctx, openai.ModerationRequest{Model: openai.ModerationOmniLatest, Input: "I like foxes."})
	if err != nil || len(mod.Results) != 1 || mod.Results[0].Flagged {
		t.Errorf("Moderations = %+v, %v; want one unflagged result", mod, err)
	}
	if c := f.lastCharge(t); c.USD != 0 || c.Endpoint != "moderations" {
		t.Errorf("moderation charge = %+v, want a free one", c)
	}
}

func TestErrors(t *testing.T) {
	f := mustStart(t)
	tests := []struct {
		name, method, path, key, body string
		wantStatus                    int
		wantCode, wantParam           any
	}{
		{"wrong key", "POST", "/v1/chat/completions", "sk-wrong-key-1234", `{}`, 401, "invalid_api_key", nil},
		{"no key", "GET", "/v1/models", "", ``, 401, nil, nil},
		{"malformed JSON", "POST", "/v1/chat/completions", testKey, `{"model":`, 400, nil, nil},
		{"wrong type", "POST", "/v1/chat/completions", testKey, `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"n":"two"}`, 400, "invalid_type", "n"},
		{"missing messages", "POST", "/v1/chat/completions", testKey, `{"model":"gpt-4o"}`, 400, "missing_required_parameter", "messages"},
		{"missing model", "POST", "/v1/embeddings", testKey, `{"input":"x"}`, 400, "missing_required_parameter", "model"},
		{"max_tokens on o1", "POST", "/v1/chat/completions", testKey, `{"model":"o1","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`, 400, "unsupported_parameter", "max_tokens"},
		{"speech too long", "POST", "/v1/audio/speech", testKey, `{"model":"tts-1","voice":"alloy","input":"` + strings.Repeat("x", 4097) + `"}`, 400, "string_above_max_length", "input"},
		{"unknown path", "POST", "/v1/chat/completion", testKey, `{}`, 404, nil, nil},
		{"wrong method", "GET", "/v1/chat/completions", testKey, ``, 404, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, f.url+tt.path, strings.NewReader(tt.body))
			if tt.key != "" {
				req.Header.Set("Authorization", "Bearer "+tt.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error map[string]any `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("error body is not JSON: %v", err)
			}
			if got, want := resp.StatusCode, tt.wantStatus; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
			for _, k := range []string{"message", "type", "param", "code"} {
				if _, ok := body.Error[k]; !ok {
					t.Errorf("error has no %q: %v", k, body.Error)
				}
			}
			if got, want := body.Error["code"], tt.wantCode; got != want {
				t.Errorf("code = %v, want %v", got, want)
			}
			if got, want := body.Error["param"], tt.wantParam; got != want {
				t.Errorf("param = %v, want %v", got, want)
			}
		})
	}
	_, err := f.c.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{Model: "gpt-4o"})
	if e := wantAPIError(t, err, http.StatusBadRequest, "messages"); e.Type != "invalid_request_error" {
		t.Errorf("type = %q, want invalid_request_error", e.Type)
	}
	status, m := f.mustJSON(t, "/v1/chat/completions", `{}`)
	if msg := m["error"].(map[string]any)["message"].(string); status != 400 || msg == "" {
		t.Errorf("empty request: %d %q", status, msg)
	}
}

func TestWrongKeyIsMasked(t *testing.T) {
	f := mustStart(t)
	cfg := openai.DefaultConfig("sk-wrong-secret-9876")
	cfg.BaseURL = f.url + "/v1"
	_, err := openai.NewClientWithConfig(cfg).ListModels(context.Background())
	e := wantAPIError(t, err, http.StatusUnauthorized, "")
	if strings.Contains(e.Message, "secret") || !strings.Contains(e.Message, "sk-") || !strings.Contains(e.Message, "9876") {
		t.Errorf("message = %q, want the key masked but for its ends", e.Message)
	}
	if got, want := e.Code, any("invalid_api_key"); got != want {
		t.Errorf("code = %v, want %v", got, want)
	}
}

func TestRequestsAreRecorded(t *testing.T) {
	f := mustStart(t)
	req, _ := http.NewRequest("POST", f.url+"/v1/embeddings", strings.NewReader(`{"model":"text-embedding-3-small","input":"x"}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("OpenAI-Organization", "org-123")
	req.Header.Set("OpenAI-Project", "proj_456")
	req.Header.Set("X-Other", "not kept")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	f.c.ListModels(context.Background())

	recs := f.s.Requests()
	if len(recs) != 2 {
		t.Fatalf("requests = %d, want 2", len(recs))
	}
	r := recs[0]
	if r.Method != "POST" || r.Path != "/v1/embeddings" || r.Endpoint != "embeddings" || r.Model != "text-embedding-3-small" || r.Status != 200 {
		t.Errorf("record = %+v", r)
	}
	for k, want := range map[string]string{"Authorization": "Bearer " + testKey, "Openai-Organization": "org-123", "Openai-Project": "proj_456", "X-Other": ""} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("recorded %s = %q, want %q", k, got, want)
		}
	}
	if got, want := recs[1].Endpoint, "models"; got != want {
		t.Errorf("second endpoint = %q, want %q", got, want)
	}
	f.s.Reset()
	if n, bill := len(f.s.Requests()), f.s.Bill(); n != 0 || bill != 0 {
		t.Errorf("after Reset: %d requests, bill %v", n, bill)
	}
}

func TestFaults(t *testing.T) {
	f := mustStart(t)
	ctx := context.Background()
	chat := openai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "Hi"}}}

	f.s.SetFault(standin.Status500)
	_, err := f.c.CreateChatCompletion(ctx, chat)
	if e := wantAPIError(t, err, http.StatusInternalServerError, ""); e.Type != "server_error" {
		t.Errorf("500 type = %q, want server_error", e.Type)
	}

	f.s.SetFault(standin.Status429)
	status, h, _ := f.mustDo(t, "POST", "/v1/embeddings", "application/json", strings.NewReader(`{"model":"text-embedding-3-small","input":"x"}`))
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Errorf("429 fault: status %d, Retry-After %q", status, h.Get("Retry-After"))
	}

	f.s.SetFault(standin.Hang)
	hangCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = f.c.CreateChatCompletion(hangCtx, chat)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang: err = %v, want the deadline", err)
	}

	f.s.SetFault(standin.DieMidStream)
	_, err = f.c.CreateChatCompletion(ctx, chat)
	if err == nil {
		t.Error("non-stream answer cut short: no error")
	}

	f.s.SetFault(standin.None)
	if _, err := f.c.CreateChatCompletion(ctx, chat); err != nil {
		t.Errorf("after the faults: %v", err)
	}
	recs := f.s.Requests()
	var got []int
	for _, r := range recs {
		got = append(got, r.Status)
	}
	if want := []int{500, 429, 0, 200, 200}; !jsonEqual(got, want) {
		t.Errorf("statuses = %v, want %v (0: never answered)", got, want)
	}
	if got, want := len(f.s.Charges()), 2; got != want {
		t.Errorf("charges = %d, want %d: faults that answer errors bill nothing", got, want)
	}
}

// TestStreamCutShortIsBilledForWhatWasSent drops a stream midway: the client
// gets a truncated stream, and the charge counts the tokens it was sent.
func TestStreamCutShortIsBilledForWhatWasSent(t *testing.T) {
	f := mustStart(t)
	f.s.SetFault(standin.DieMidStream)
	stream, err := f.c.CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{Model: "gpt-4o-mini", Stream: true,
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "Hi"}}, StreamOptions: &openai.StreamOptions{IncludeUsage: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var pieces int
	for {
		chunk, err := stream.Recv()
		if err != nil {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("stream ended with %v, want an unexpected EOF", err)
			}
			break
		}
		if chunk.Usage != nil {
			t.Fatal("got the usage chunk of a stream that was cut")
		}
		for _, c := range chunk.Choices {
			if c.Delta.Content != "" {
				pieces++
			}
		}
	}
	if full := tokens("gpt-4o-mini", replyText); pieces == 0 || pieces >= full {
		t.Errorf("got %d of %d tokens, want some but not all", pieces, full)
	}
	if got, want := f.lastCharge(t).Units.OutputTokens, pieces; got != want {
		t.Errorf("charged output tokens = %d, want the %d sent", got, want)
	}
}

func TestBill(t *testing.T) {
	prices := mustPrices(t)
	ctx := context.Background()
	tests := []struct {
		name      string
		call      func(f fixture) error
		want      func(c standin.Charge) float64
		tolerance float64
	}{
		{"gpt-4o chat", func(f fixture) error {
			_, err := f.c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "gpt-4o-2024-08-06", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "Hi"}}})
			return err
		}, func(c standin.Charge) float64 {
			return float64(c.Units.InputTokens)*2.5e-6 + float64(c.Units.OutputTokens)*1e-5
		}, 1e-12},
		{"dall-e-3 standard 1024x1024", func(f fixture) error {
			_, err := f.c.CreateImage(ctx, openai.ImageRequest{Model: "dall-e-3", Prompt: "fox", Size: "1024x1024"})
			return err
		}, func(standin.Charge) float64 { return 0.04 }, 1e-6},
		{"dall-e-3 hd 1792x1024", func(f fixture) error {
			_, err := f.c.CreateImage(ctx, openai.ImageRequest{Model: "dall-e-3", Prompt: "fox", Size: "1792x1024", Quality: "hd"})
			return err
		}, func(standin.Charge) float64 { return 0.12 }, 1e-4},
		{"dall-e-2 two at 512x512", func(f fixture) error {
			_, err := f.c.CreateImage(ctx, openai.ImageRequest{Model: "dall-e-2", Prompt: "fox", Size: "512x512", N: 2})
			return err
		}, func(standin.Charge) float64 { return 2 * 512 * 512 * 6.86e-08 }, 1e-9},
		{"tts-1 1000 characters", func(f fixture) error {
			_, err := f.c.CreateSpeech(ctx, openai.CreateSpeechRequest{Model: "tts-1", Voice: "alloy", Input: strings.Repeat("abcd ", 200)})
			return err
		}, func(standin.Charge) float64 { return 0.015 }, 1e-9},
		{"gpt-4o-mini-tts tokens", func(f fixture) error {
			_, err := f.c.CreateSpeech(ctx, openai.CreateSpeechRequest{Model: "gpt-4o-mini-tts", Voice: "alloy", Input: "Hello there."})
			return err
		}, func(c standin.Charge) float64 {
			return float64(c.Units.InputTokens)*2.5e-6 + float64(c.Units.OutputTokens)*1.2e-5
		}, 1e-12},
		{"whisper-1 2.5 s", func(f fixture) error {
			_, err := f.c.CreateTranscription(ctx, openai.AudioRequest{Model: "whisper-1", FilePath: "a.wav", Reader: bytes.NewReader(mustWAV(2.5))})
			return err
		}, func(standin.Charge) float64 { return 3 * 0.0001 }, 1e-12},
		{"embeddings", func(f fixture) error {
			_, err := f.c.CreateEmbeddings(ctx, openai.EmbeddingRequest{Model: "text-embedding-3-small", Input: "hello world"})
			return err
		}, func(standin.Charge) float64 { return 2 * 2e-08 }, 1e-15},
		{"gpt-image-1 low", func(f fixture) error {
			_, err := f.c.CreateImage(ctx, openai.ImageRequest{Model: "gpt-image-1", Prompt: "a fox", Quality: "low"})
			return err
		}, func(c standin.Charge) float64 {
			return float64(tokens("gpt-image-1", "a fox"))*5e-06 + 272*4e-05
		}, 1e-12},
		{"unpriced model", func(f fixture) error {
			_, err := f.c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "gpt-nonexistent", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "Hi"}}})
			return err
		}, func(standin.Charge) float64 { return 0 }, 0},
	}
	var total float64
	f := mustStart(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(f); err != nil {
				t.Fatal(err)
			}
			c := f.lastCharge(t)
			if got, want := c.USD, tt.want(c); math.Abs(got-want) > tt.tolerance {
				t.Errorf("charge = %v, want %v (units %+v, key %q)", got, want, c.Units, c.PriceKey)
			}
			if got, want := c.PriceKey == "", tt.name == "unpriced model"; got != want {
				t.Errorf("price key = %q", c.PriceKey)
			}
			if c.PriceKey != "" && prices[c.PriceKey] == nil {
				t.Errorf("price key %q is not in the price table", c.PriceKey)
			}
			total += c.USD
		})
	}
	if got, want := f.s.Bill(), total; math.Abs(got-want) > 1e-12 {
		t.Errorf("Bill = %v, want the sum of the charges %v", got, want)
	}
}

func TestLatency(t *testing.T) {
	s := standin.New(standin.Options{Latency: 50 * time.Millisecond})
	ts := httptest.NewServer(s)
	defer ts.Close()
	start := time.Now()
	resp, err := http.Get(ts.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := time.Since(start), 50*time.Millisecond; got < want {
		t.Errorf("answered in %v, want at least %v", got, want)
	}
}

func TestPicturesAreSmallPNGs(t *testing.T) {
	f := mustStart(t)
	_, m := f.mustJSON(t, "/v1/images/generations", `{"model":"dall-e-2","prompt":"fox","response_format":"b64_json"}`)
	b, err := base64.StdEncoding.DecodeString(m["data"].([]any)[0].(map[string]any)["b64_json"].(string))
	if err != nil {
		t.Fatal(err)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil || format != "png" || cfg.Width > 256 {
		t.Errorf("picture: %v %q %v", cfg, format, err)
	}
}
