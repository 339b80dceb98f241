package watchdog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/notify"
	"github.com/keycap/keycap/watchdog/problem"
	"github.com/keycap/keycap/watchdog/standin"
)

// realKey is the stand-in's key; it must never show up anywhere keycap writes.
const realKey = "sk-proj-" + "REALKEYabcdefghijklmnopqrstuvwxyz0123456789wxyz"

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is an engine in front of a stand-in upstream.
type harness struct {
	w        *Watchdog
	up       *standin.Server
	upstream *httptest.Server
	clock    *clock
	logs     *bytes.Buffer
	notes    *notify.Recorder
	home     string
	cancel   context.CancelFunc
	done     chan error
}

func loadPrices(tb testing.TB) map[string]map[string]any {
	tb.Helper()
	b, err := os.ReadFile("pricing/litellm/model_prices.json")
	if err != nil {
		tb.Fatal(err)
	}
	var raw map[string]json.RawMessage
	json.Unmarshal(b, &raw)
	out := map[string]map[string]any{}
	for k, v := range raw {
		var m map[string]any
		if json.Unmarshal(v, &m) == nil {
			out[k] = m
		}
	}
	return out
}

type harnessOpt func(*config.Config)

// noGuards turns the loop guard, breaker and storm alarm off, for tests of
// the cap on its own.
func noGuards(c *config.Config) {
	c.Guards.LoopWarnAt, c.Guards.LoopBlockAt, c.Guards.RateFraction, c.Guards.RetryStormAt = 0, 0, 0, 0
}

// MustStart starts an engine on 127.0.0.1:0 with a temp home and a
// stand-in upstream, and stops both at the end of the test.
func MustStart(tb testing.TB, opts ...harnessOpt) *harness {
	tb.Helper()
	h := &harness{home: tb.TempDir(), logs: &bytes.Buffer{}, clock: &clock{t: time.Now()}}
	h.up = standin.New(standin.Options{APIKey: realKey, Prices: loadPrices(tb)})
	h.upstream = httptest.NewServer(h.up)
	tb.Cleanup(h.upstream.Close)
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.Upstream = h.upstream.URL + "/v1"
	for _, o := range opts {
		o(&cfg)
	}
	if err := config.Save(filepath.Join(h.home, config.FileName), cfg); err != nil {
		tb.Fatal(err)
	}
	h.start(tb)
	return h
}

var logMu sync.Mutex

type lockedWriter struct{ b *bytes.Buffer }

func (l lockedWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return l.b.Write(p)
}

func (h *harness) start(tb testing.TB) {
	tb.Helper()
	if h.notes == nil {
		h.notes = &notify.Recorder{}
	}
	w, err := Open(Options{
		Home: h.home, Now: h.clock.Now, Key: func() (string, error) { return realKey, nil }, Notifier: h.notes,
		Logger: slog.New(slog.NewTextHandler(lockedWriter{h.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		tb.Fatal(err)
	}
	h.w = w
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- w.Run(ctx) }()
	tb.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	<-h.done
	h.w.Close()
	h.cancel = nil
}

func (h *harness) token(tb testing.TB, label string, budget money.USD) string {
	tb.Helper()
	tok, _, err := h.w.IssueToken(context.Background(), label, time.Hour, budget)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func (h *harness) client(tb testing.TB, label string) *openai.Client {
	cfg := openai.DefaultConfig(h.token(tb, label, 0))
	cfg.BaseURL = h.w.ProxyURL()
	return openai.NewClientWithConfig(cfg)
}

// settled waits until no request is reserved (settlement runs when the
// response body is closed, just after the client has read it).
func (h *harness) settled(tb testing.TB) []ledger.Entry {
	tb.Helper()
	for range 200 {
		es, err := h.w.Ledger().Recent(context.Background(), 10_000)
		if err != nil {
			tb.Fatal(err)
		}
		open := false
		for _, e := range es {
			open = open || e.State == ledger.Reserved
		}
		if !open {
			return es
		}
		time.Sleep(5 * time.Millisecond)
	}
	tb.Fatal("requests never settled")
	return nil
}

func apiErr(tb testing.TB, err error) *openai.APIError {
	tb.Helper()
	var ae *openai.APIError
	if !errors.As(err, &ae) {
		tb.Fatalf("err = %v (%T), want an OpenAI API error", err, err)
	}
	return ae
}

func wavFile(seconds int) []byte {
	rate := 16000
	n := rate * 2 * seconds
	b := make([]byte, 44+n)
	copy(b, "RIFF")
	put32(b[4:], uint32(36+n))
	copy(b[8:], "WAVEfmt ")
	put32(b[16:], 16)
	b[20], b[22] = 1, 1
	put32(b[24:], uint32(rate))
	put32(b[28:], uint32(rate*2))
	b[32], b[34] = 2, 16
	copy(b[36:], "data")
	put32(b[40:], uint32(n))
	return b
}

// namedReader gives go-openai's multipart writer a file name.
type namedReader struct {
	io.Reader
	name string
}

func (n namedReader) Name() string { return n.name }

func pngEncode(w io.Writer, img image.Image) { png.Encode(w, img) }

func put32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// TestEveryEndpointMatchesTheBill drives each metered endpoint with go-openai
// through the proxy and checks that the ledger charged what the stand-in
// billed: exactly (to the micro-dollar) where usage is reported.
func TestEveryEndpointMatchesTheBill(t *testing.T) {
	h := MustStart(t)
	c := h.client(t, "endpoints.py")
	ctx := context.Background()
	long := strings.Repeat("The chat log says: fly to London. ", 60)
	steps := []struct {
		name string
		run  func() error
	}{
		{"chat", func() error {
			_, err := c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "gpt-4o-mini", MaxCompletionTokens: 50,
				Messages: []openai.ChatCompletionMessage{{Role: "system", Content: "You are an airline assistant."}, {Role: "user", Content: long}}})
			return err
		}},
		{"chat reasoning", func() error {
			_, err := c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "o3-mini", MaxCompletionTokens: 300,
				Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "Think."}}})
			return err
		}},
		{"chat n=2", func() error {
			_, err := c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "gpt-4o-mini", N: 2, MaxCompletionTokens: 30,
				Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "Two answers."}}})
			return err
		}},
		{"chat stream", func() error {
			s, err := c.CreateChatCompletionStream(ctx, openai.ChatCompletionRequest{Model: "gpt-4o", MaxCompletionTokens: 40, Stream: true,
				Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "Stream to me."}}})
			if err != nil {
				return err
			}
			defer s.Close()
			for {
				r, err := s.Recv()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
				if r.Usage != nil {
					return errors.New("the client got a usage chunk it did not ask for")
				}
			}
		}},
		{"embeddings", func() error {
			_, err := c.CreateEmbeddings(ctx, openai.EmbeddingRequestStrings{Model: openai.SmallEmbedding3, Input: []string{long, "second"}})
			return err
		}},
		{"speech tts-1", func() error {
			r, err := c.CreateSpeech(ctx, openai.CreateSpeechRequest{Model: openai.TTSModel1, Voice: openai.VoiceAlloy, Input: long, ResponseFormat: openai.SpeechResponseFormatWav})
			if err != nil {
				return err
			}
			defer r.Close()
			b, _ := io.ReadAll(r)
			if !bytes.HasPrefix(b, []byte("RIFF")) {
				return errors.New("speech is not a WAV file")
			}
			return nil
		}},
		{"transcription whisper-1", func() error {
			_, err := c.CreateTranscription(ctx, openai.AudioRequest{Model: openai.Whisper1, FilePath: "chat.wav", Reader: bytes.NewReader(wavFile(7)), Format: openai.AudioResponseFormatVerboseJSON})
			return err
		}},
		{"image dall-e-3 hd", func() error {
			_, err := c.CreateImage(ctx, openai.ImageRequest{Model: openai.CreateImageModelDallE3, Prompt: "London at dusk", Size: openai.CreateImageSize1792x1024, Quality: openai.CreateImageQualityHD, ResponseFormat: openai.CreateImageResponseFormatB64JSON})
			return err
		}},
		{"image gpt-image-1", func() error {
			_, err := c.CreateImage(ctx, openai.ImageRequest{Model: "gpt-image-1", Prompt: "A boarding pass", Size: "1024x1024", Quality: "low"})
			return err
		}},
		{"image edit dall-e-2", func() error {
			var png bytes.Buffer
			img := image.NewRGBA(image.Rect(0, 0, 8, 8))
			pngEncode(&png, img)
			_, err := c.CreateEditImage(ctx, openai.ImageEditRequest{Image: namedReader{bytes.NewReader(png.Bytes()), "plane.png"}, Prompt: "add a plane", Model: "dall-e-2", N: 2, Size: "512x512", ResponseFormat: openai.CreateImageResponseFormatB64JSON})
			return err
		}},
		{"translation whisper-1", func() error {
			_, err := c.CreateTranslation(ctx, openai.AudioRequest{Model: openai.Whisper1, FilePath: "fr.wav", Reader: bytes.NewReader(wavFile(3)), Format: openai.AudioResponseFormatJSON})
			return err
		}},
		{"moderation", func() error {
			_, err := c.Moderations(ctx, openai.ModerationRequest{Model: "omni-moderation-latest", Input: "hello"})
			return err
		}},
		{"models", func() error {
			_, err := c.ListModels(ctx)
			return err
		}},
	}
	for _, s := range steps {
		before := len(h.up.Charges())
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		es := h.settled(t)
		charges := h.up.Charges()
		if s.name == "models" {
			if es[0].Cost != 0 || es[0].Endpoint != "other" {
				t.Errorf("models: ledger %+v, want $0 other", es[0])
			}
			continue
		}
		if len(charges) != before+1 {
			t.Fatalf("%s: stand-in billed %d requests, want 1", s.name, len(charges)-before)
		}
		want := money.FromFloat(charges[len(charges)-1].USD)
		got := es[0]
		if !got.Exact || got.Cost != want {
			t.Errorf("%s: ledger charged %d µ$ (exact %v, note %q), stand-in billed %d µ$ (%+v)", s.name, got.Cost, got.Exact, got.Note, want, charges[len(charges)-1])
		}
		if got.Estimate < got.Cost {
			t.Errorf("%s: reservation %d below the real cost %d", s.name, got.Estimate, got.Cost)
		}
	}
	total := money.FromFloat(h.up.Bill())
	st := h.w.Status()
	if d := st.Spent - total; d < 0 || d > 20 {
		t.Errorf("status spent %d, stand-in bill %d", st.Spent, total)
	}
	for _, r := range h.up.Requests() {
		if got := r.Header.Get("Authorization"); got != "Bearer "+realKey {
			t.Fatalf("upstream saw Authorization %q, want the real key", got)
		}
	}
}

func TestResponsesAPIStreamAndPlain(t *testing.T) {
	h := MustStart(t)
	tok := h.token(t, "responses.py", 0)
	for _, stream := range []bool{false, true} {
		body := `{"model":"gpt-4o-mini","input":"Say hi","max_output_tokens":30,"stream":` + map[bool]string{false: "false", true: "true"}[stream] + `}`
		req, _ := http.NewRequest("POST", h.w.ProxyURL()+"/responses", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("stream=%v: %d %s", stream, resp.StatusCode, b)
		}
		if stream && !bytes.Contains(b, []byte("response.completed")) {
			t.Errorf("stream lacks response.completed: %s", b)
		}
		es := h.settled(t)
		ch := h.up.Charges()
		if want := money.FromFloat(ch[len(ch)-1].USD); es[0].Cost != want || !es[0].Exact {
			t.Errorf("stream=%v: ledger %d (exact %v, %q), bill %d", stream, es[0].Cost, es[0].Exact, es[0].Note, want)
		}
	}
}

// TestSixtyFourLoopsUnderOneDollarCap is the incident in miniature: 64
// copies of a script loop on the dearest speech request under a $1 cap.
func TestSixtyFourLoopsUnderOneDollarCap(t *testing.T) {
	h := MustStart(t, noGuards, func(c *config.Config) { c.DailyCapUSD = 1 })
	c := h.client(t, "airline_multi-modal.py")
	input := strings.Repeat("# chatlog.md\n", 400)[:4096]
	const price = 4096 * 30 // tts-1-hd: $30 per million characters, in µ$
	var mu sync.Mutex
	var ok, capped int
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				r, err := c.CreateSpeech(context.Background(), openai.CreateSpeechRequest{Model: openai.TTSModel1HD, Voice: openai.VoiceNova, Input: input})
				mu.Lock()
				if err == nil {
					io.Copy(io.Discard, r)
					r.Close()
					ok++
				} else if ae := apiErr(t, err); ae.Code == problem.DailyCapReached && ae.HTTPStatusCode == 429 {
					capped++
				} else {
					t.Errorf("unexpected error %v", err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	h.settled(t)
	maxOK := int(money.Dollar / price)
	upstream := len(h.up.Requests())
	if upstream > maxOK || ok > maxOK {
		t.Errorf("upstream saw %d requests (%d succeeded), want at most ⌊cap/price⌋ = %d", upstream, ok, maxOK)
	}
	if ok != maxOK {
		t.Errorf("%d requests went through, want exactly %d: the cap should be usable to the cent", ok, maxOK)
	}
	if bill := h.up.Bill(); bill > 1.0 {
		t.Errorf("upstream billed $%.4f, over the $1 cap", bill)
	}
	if capped != 64*3-ok {
		t.Errorf("%d refused with daily_cap_reached, want %d", capped, 64*3-ok)
	}
	st := h.w.Status()
	if st.Spent > st.Cap || !st.CapReached && st.Remaining >= price {
		t.Errorf("status after the loop: %+v", st)
	}
	ev, _ := h.w.Ledger().Events(context.Background(), 10)
	if len(ev) == 0 || ev[0].Kind != "cap_reached" {
		t.Errorf("events = %+v, want cap_reached", ev)
	}
	if _, _, err := h.w.IssueToken(context.Background(), "more", time.Hour, 0); problem.CodeOf(err) != problem.DailyCapReached {
		t.Errorf("token after cap: err = %v, want daily_cap_reached", err)
	}
}

func TestCapRefusalIsOpenAIShapedAndNotRetried(t *testing.T) {
	h := MustStart(t, func(c *config.Config) { c.DailyCapUSD = 0.01 })
	tok := h.token(t, "x", 0)
	req, _ := http.NewRequest("POST", h.w.ProxyURL()+"/images/generations", strings.NewReader(`{"model":"dall-e-3","prompt":"x"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body problem.Body
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 429 || resp.Header.Get("X-Should-Retry") != "false" {
		t.Errorf("status %d, x-should-retry %q", resp.StatusCode, resp.Header.Get("X-Should-Retry"))
	}
	e := body.Error
	if e.Code != "daily_cap_reached" || e.Type != "insufficient_quota" || e.Param != nil ||
		!strings.HasPrefix(e.Message, "keycap: ") || !strings.Contains(e.Message, "$0.01") || !strings.Contains(e.Message, "$0.04") || !strings.Contains(e.Message, "keycap cap") {
		t.Errorf("error body = %+v", e)
	}
	if n := len(h.up.Requests()); n != 0 {
		t.Errorf("upstream saw %d requests", n)
	}
}

func TestTokenExpiryAndRevocation(t *testing.T) {
	h := MustStart(t)
	ctx := context.Background()
	short, _, err := h.w.IssueToken(ctx, "short", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	other, info, _ := h.w.IssueToken(ctx, "other", time.Hour, 0)
	call := func(tok string) (int, string) {
		req, _ := http.NewRequest("GET", h.w.ProxyURL()+"/models", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b problem.Body
		json.NewDecoder(resp.Body).Decode(&b)
		return resp.StatusCode, b.Error.Code
	}
	if s, _ := call(short); s != 200 {
		t.Fatalf("fresh token: %d", s)
	}
	h.clock.Add(61 * time.Second)
	if s, code := call(short); s != 401 || code != problem.TokenExpired {
		t.Errorf("expired token: %d %s", s, code)
	}
	if s, _ := call(other); s != 200 {
		t.Errorf("live token: %d", s)
	}
	if n, err := h.w.Revoke(ctx, info.ID); err != nil || n != 1 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	if s, code := call(other); s != 401 || code != problem.InvalidToken {
		t.Errorf("revoked token: %d %s", s, code)
	}
	if s, code := call(realKey); s != 401 || code != problem.InvalidToken {
		t.Errorf("raw key: %d %s", s, code)
	}
	if _, _, err := h.w.IssueToken(ctx, "long", 25*time.Hour, 0); problem.CodeOf(err) != problem.Invalid {
		t.Errorf("25h token: %v", err)
	}
}

func TestTokensSurviveRestart(t *testing.T) {
	h := MustStart(t)
	tok := h.token(t, "keeps", 0)
	h.stop()
	h.start(t)
	c := openai.DefaultConfig(tok)
	c.BaseURL = h.w.ProxyURL()
	if _, err := openai.NewClientWithConfig(c).ListModels(context.Background()); err != nil {
		t.Errorf("token after restart: %v", err)
	}
}

func TestPauseResume(t *testing.T) {
	h := MustStart(t)
	c := h.client(t, "loop.py")
	ctx := context.Background()
	req := openai.CreateSpeechRequest{Model: openai.TTSModel1, Voice: openai.VoiceAlloy, Input: "hello"}
	if err := h.w.Pause("user"); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateSpeech(ctx, req)
	if ae := apiErr(t, err); ae.Code != problem.Paused || ae.HTTPStatusCode != 429 {
		t.Errorf("paused: %v", err)
	}
	if _, _, err := h.w.IssueToken(ctx, "x", time.Hour, 0); problem.CodeOf(err) != problem.Paused {
		t.Errorf("token while paused: %v", err)
	}
	// The pause survives a restart.
	h.stop()
	h.start(t)
	if !h.w.Status().Paused {
		t.Fatal("pause lost on restart")
	}
	h.w.Resume()
	c = h.client(t, "loop.py") // the restarted engine listens on a new port
	r, err := c.CreateSpeech(ctx, req)
	if err != nil {
		t.Fatalf("resumed: %v", err)
	}
	r.Close()
	if n := len(h.up.Requests()); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
}

func TestDayRolloverInTokyo(t *testing.T) {
	h := MustStart(t, noGuards, func(c *config.Config) { c.Timezone = "Asia/Tokyo"; c.DailyCapUSD = 0.05 })
	// 14:59:30 UTC is 23:59:30 in Tokyo.
	h.clock.mu.Lock()
	h.clock.t = time.Date(2026, 12, 4, 14, 59, 30, 0, time.UTC)
	h.clock.mu.Unlock()
	c := h.client(t, "night.py")
	ctx := context.Background()
	img := openai.ImageRequest{Model: openai.CreateImageModelDallE3, Prompt: "midnight"}
	if _, err := c.CreateImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateImage(ctx, img); apiErr(t, err).Code != problem.DailyCapReached {
		t.Fatalf("second image before midnight: %v", err)
	}
	h.clock.Add(time.Minute)
	if _, err := c.CreateImage(ctx, img); err != nil {
		t.Fatalf("after midnight in Tokyo: %v", err)
	}
	es := h.settled(t)
	if es[0].Day != "2026-12-05" || es[len(es)-1].Day != "2026-12-04" {
		t.Errorf("days = %s, %s", es[0].Day, es[len(es)-1].Day)
	}
	if st := h.w.Status(); st.Day != "2026-12-05" || st.Spent != 40_000 {
		t.Errorf("status = %s %d", st.Day, st.Spent)
	}
}

func TestStreamAbortedMidwayIsCharged(t *testing.T) {
	// A slow upstream: one chunk, then nothing until the client leaves.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Once\"}}]}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer slow.Close()
	for _, how := range []string{"upstream dies", "client disconnects"} {
		t.Run(how, func(t *testing.T) {
			h := MustStart(t, func(c *config.Config) {
				if how == "client disconnects" {
					c.Upstream = slow.URL + "/v1"
				}
			})
			h.up.SetFault(standin.DieMidStream)
			c := h.client(t, "stream.py")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := c.CreateChatCompletionStream(ctx, openai.ChatCompletionRequest{Model: "gpt-4o", MaxCompletionTokens: 2000, Stream: true,
				Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "Tell me a long story."}}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Recv(); err != nil {
				t.Fatalf("first chunk: %v", err)
			}
			if how == "client disconnects" {
				cancel()
			} else {
				for {
					if _, err := s.Recv(); err != nil {
						break
					}
				}
			}
			s.Close()
			es := h.settled(t)
			e := es[0]
			if e.Exact || e.Cost != e.Estimate || e.Cost < money.FromFloat(h.up.Bill()) || !strings.Contains(e.Note, "estimate") {
				t.Errorf("aborted stream charged %+v, want the full estimate, flagged; upstream billed $%f", e, h.up.Bill())
			}
			if st := h.w.Status(); st.Reserved != 0 || st.Spent != e.Cost {
				t.Errorf("status after abort: reserved %d spent %d", st.Reserved, st.Spent)
			}
		})
	}
}

func TestRestartCountsUnsettledReservations(t *testing.T) {
	h := MustStart(t)
	h.stop()
	// Reservations a crashed engine left behind.
	db, err := ledger.Open(filepath.Join(h.home, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	day := time.Now().Format(time.DateOnly)
	db.Reserve(context.Background(), ledger.Entry{Start: time.Now(), Day: day, TokenID: "t", Label: "crashed.py", Endpoint: "audio.speech", Model: "tts-1", Estimate: 61_440})
	db.Reserve(context.Background(), ledger.Entry{Start: time.Now(), Day: day, TokenID: "t", Label: "crashed.py", Endpoint: "images.generations", Model: "dall-e-3", Estimate: 40_000})
	db.Close()
	h.start(t)
	st := h.w.Status()
	if st.Spent != 101_440 || st.Recovered != 2 {
		t.Errorf("after restart: spent %d, recovered %d; want 101440 and 2", st.Spent, st.Recovered)
	}
	ev, _ := h.w.Ledger().Events(context.Background(), 1)
	if len(ev) != 1 || ev[0].Kind != "recovered" {
		t.Errorf("events = %+v", ev)
	}
}

func TestUnwritableLedgerRefusesRequests(t *testing.T) {
	h := MustStart(t)
	c := h.client(t, "x")
	h.w.Ledger().Close()
	_, err := c.CreateSpeech(context.Background(), openai.CreateSpeechRequest{Model: openai.TTSModel1, Voice: openai.VoiceAlloy, Input: "hello"})
	if ae := apiErr(t, err); ae.HTTPStatusCode != 503 || ae.Code != problem.LedgerUnavailable {
		t.Errorf("err = %v", err)
	}
	if n := len(h.up.Requests()); n != 0 {
		t.Errorf("upstream saw %d requests although nothing could be recorded", n)
	}
	if st := h.w.Status(); st.Reserved != 0 {
		t.Errorf("reservation leaked: %d", st.Reserved)
	}
}

func TestBadRequestsGetClearErrors(t *testing.T) {
	h := MustStart(t)
	tok := h.token(t, "bad", 0)
	for _, tt := range []struct {
		name, path, body string
		status           int
		code, inMsg      string
	}{
		{"malformed JSON", "/chat/completions", `{"model":"gpt-4o",`, 400, problem.Invalid, "not valid JSON"},
		{"unknown model", "/chat/completions", `{"model":"gpt-7-ultra","messages":[{"role":"user","content":"x"}]}`, 400, problem.UnknownPrice, `[prices."gpt-7-ultra"]`},
		{"oversized body", "/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("x", 65<<20) + `"}]}`, 413, problem.BodyTooLarge, "larger than"},
		{"no input", "/audio/speech", `{"model":"tts-1","voice":"alloy"}`, 400, problem.Invalid, "input"},
		{"wrong path", "/../../etc", `{}`, 404, problem.NotFound, "OPENAI_BASE_URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", h.w.ProxyURL()+tt.path, strings.NewReader(tt.body))
			if tt.name == "wrong path" {
				req.URL.Path = "/v2/x"
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b problem.Body
			if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
				t.Fatalf("body is not OpenAI-shaped JSON: %v", err)
			}
			if resp.StatusCode != tt.status || b.Error.Code != tt.code || !strings.Contains(b.Error.Message, tt.inMsg) {
				t.Errorf("got %d %+v, want %d %s containing %q", resp.StatusCode, b.Error, tt.status, tt.code, tt.inMsg)
			}
		})
	}
	if n := len(h.up.Requests()); n != 0 {
		t.Errorf("upstream saw %d bad requests", n)
	}
}

func TestHeadersPassThroughAndHostOriginChecks(t *testing.T) {
	h := MustStart(t)
	tok := h.token(t, "hdr", 0)
	do := func(host, origin string) int {
		req, _ := http.NewRequest("POST", h.w.ProxyURL()+"/moderations", strings.NewReader(`{"model":"omni-moderation-latest","input":"x"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("OpenAI-Organization", "org-123")
		req.Header.Set("OpenAI-Project", "proj_abc")
		if host != "" {
			req.Host = host
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := do("", ""); s != 200 {
		t.Fatalf("plain request: %d", s)
	}
	r := h.up.Requests()[0]
	if r.Header.Get("OpenAI-Organization") != "org-123" || r.Header.Get("OpenAI-Project") != "proj_abc" {
		t.Errorf("headers not passed through: %v", r.Header)
	}
	if s := do("localhost:1234", ""); s != 200 {
		t.Errorf("localhost host: %d", s)
	}
	if s := do("evil.example.com", ""); s != 403 {
		t.Errorf("rebinding host: %d, want 403", s)
	}
	if s := do("", "https://evil.example.com"); s != 403 {
		t.Errorf("browser origin: %d, want 403", s)
	}
}

func TestAllowedOriginGetsCORS(t *testing.T) {
	h := MustStart(t, func(c *config.Config) { c.AllowOrigins = []string{"http://localhost:5173"} })
	req, _ := http.NewRequest("OPTIONS", h.w.ProxyURL()+"/chat/completions", nil)
	req.Header.Set("Origin", "http://localhost:5173")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:5173" ||
		resp.Header.Get("Access-Control-Allow-Headers") != "authorization,content-type" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if n := len(h.up.Requests()); n != 0 {
		t.Errorf("the preflight reached upstream (%d)", n)
	}
	tok := h.token(t, "web", 0)
	req, _ = http.NewRequest("POST", h.w.ProxyURL()+"/moderations", strings.NewReader(`{"model":"omni-moderation-latest","input":"x"}`))
	req.Header.Set("Origin", "http://localhost:5173")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(resp.Header.Values("Access-Control-Allow-Origin")) != 1 {
		t.Errorf("allowed origin: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestSecondEngineSaysWhoHoldsTheLock(t *testing.T) {
	h := MustStart(t)
	_, err := Open(Options{Home: h.home, Listen: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "already running") || !strings.Contains(err.Error(), "process ") {
		t.Errorf("second engine: %v", err)
	}
}

func TestKeyNeverWritten(t *testing.T) {
	h := MustStart(t)
	c := h.client(t, "leak.py")
	ctx := context.Background()
	c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "gpt-4o-mini", MaxCompletionTokens: 5, Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "x"}}})
	h.up.SetFault(standin.Status500)
	c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "gpt-4o-mini", MaxCompletionTokens: 5, Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "x"}}})
	h.upstream.Close()
	c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "gpt-4o-mini", MaxCompletionTokens: 5, Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "x"}}})
	h.settled(t)
	st, _ := json.Marshal(h.w.Status())
	h.stop()
	if !strings.Contains(string(st), "sk-…wxyz") {
		t.Errorf("status does not show the redacted key: %s", st)
	}
	secret := []byte(realKey[8:])
	filepath.Walk(h.home, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, secret) {
			t.Errorf("the key is in %s", p)
		}
		return nil
	})
	logMu.Lock()
	defer logMu.Unlock()
	if bytes.Contains(h.logs.Bytes(), secret) || bytes.Contains(st, secret) {
		t.Error("the key is in the log or status")
	}
	if h.logs.Len() == 0 {
		t.Error("no log written: the test would prove nothing")
	}
}

// TestRehearsalNeverLeavesTheMachine runs the same requests for real and
// rehearsed: the rehearsal reaches no upstream, costs nothing against the
// cap, and prices the run as the real one was billed.
func TestRehearsalNeverLeavesTheMachine(t *testing.T) {
	h := MustStart(t)
	ctx := context.Background()
	script := func(c *openai.Client) {
		t.Helper()
		r, err := c.CreateSpeech(ctx, openai.CreateSpeechRequest{Model: openai.TTSModel1, Voice: openai.VoiceAlloy, Input: strings.Repeat("chatlog.md says hello. ", 100)})
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, r)
		r.Close()
		img, err := c.CreateImage(ctx, openai.ImageRequest{Model: openai.CreateImageModelDallE3, Prompt: "London", ResponseFormat: openai.CreateImageResponseFormatB64JSON})
		if err != nil || len(img.Data) != 1 || img.Data[0].B64JSON == "" {
			t.Fatalf("rehearsed image: %v %+v", err, img)
		}
		if _, err := c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "gpt-4o-mini", MaxCompletionTokens: 40,
			Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "Price of a ticket to Paris?"}}}); err != nil {
			t.Fatal(err)
		}
	}
	script(h.client(t, "real.py"))
	h.settled(t)
	bill := money.FromFloat(h.up.Bill())
	h.up.Reset()

	tok, _, err := h.w.NewToken(ctx, TokenOptions{Label: "rehearse.py", TTL: time.Hour, Rehearse: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := openai.DefaultConfig(tok)
	cfg.BaseURL = h.w.ProxyURL()
	before := h.w.Status()
	script(openai.NewClientWithConfig(cfg))
	h.settled(t)
	if n := len(h.up.Requests()); n != 0 {
		t.Errorf("upstream saw %d rehearsed requests", n)
	}
	st := h.w.Status()
	if st.Spent != before.Spent || st.RehearsedRequests != 3 {
		t.Errorf("real spend moved from %d to %d; rehearsed requests %d", before.Spent, st.Spent, st.RehearsedRequests)
	}
	if d := float64(st.RehearsedSpent-bill) / float64(bill); d < -0.10 || d > 0.10 {
		t.Errorf("rehearsal priced at %s, the real run was billed %s", st.RehearsedSpent, bill)
	}
	es, _ := h.w.Ledger().Recent(ctx, 3)
	for _, e := range es {
		if !e.Rehearsed {
			t.Errorf("entry %d not marked rehearsed", e.ID)
		}
	}
	// Rehearsal mode for everyone: a real token is rehearsed too.
	h.w.SetRehearsing(true)
	script(h.client(t, "real-again.py"))
	h.settled(t)
	if n := len(h.up.Requests()); n != 0 {
		t.Errorf("upstream saw %d requests in rehearsal mode", n)
	}
}
