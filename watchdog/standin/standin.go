// Package standin is a stand-in for the OpenAI API: an http.Handler that answers
// the endpoints keycap meters (chat completions, responses, embeddings, speech,
// transcriptions, translations, images, moderations and models) with bodies
// shaped like the official OpenAPI description, counts tokens with tiktoken, and
// works out what the real API would have billed for each answer.
//
// keycap's tests use it as the fake upstream behind the metering proxy, with
// faults injected on demand; rehearsal mode lets a user run a script against it
// for free. Answers are deterministic: the same request gets the same text,
// usage and bytes, apart from ids and timestamps. No model is called: replies are
// a fixed sentence, audio is silence and images are small generated pictures.
package standin

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxBody is the largest request body the Server reads; the real API's upload
// limit for audio is 25 MB.
const maxBody = 32 << 20

// Options configure a Server. The zero value is a server that needs no API key,
// answers at once and bills nothing.
type Options struct {
	// APIKey, when set, must arrive as "Authorization: Bearer <APIKey>";
	// requests without it are answered 401 as the real API does.
	APIKey string
	// Latency is waited before each answer.
	Latency time.Duration
	// Prices holds raw LiteLLM price entries (model, or "<quality>/<W>-x-<H>/<model>"
	// for DALL-E, to fields like "input_cost_per_token"). It is used only to
	// compute Charges and Bill, and must not be changed after New.
	Prices map[string]map[string]any
	// Now stamps the "created" fields; it defaults to time.Now.
	Now func() time.Time
}

// Fault is a failure the Server injects into its answers, set with SetFault.
// Faults replace successful answers only: a request the real API would refuse
// (a bad key, a malformed body) is still refused as usual.
type Fault int

// The faults a Server can inject.
const (
	// None answers normally.
	None Fault = iota
	// Status500 answers 500 with a server_error.
	Status500
	// Status429 answers 429 rate_limit_exceeded with "Retry-After: 1".
	Status429
	// DieMidStream sends the status, headers and the first half of the body
	// (of the SSE events, for a stream) and then drops the connection.
	DieMidStream
	// Hang never answers; the handler returns when the request's context
	// ends, so a test must give its client a deadline (httptest.Server.Close
	// waits for the handler).
	Hang
)

// Record is one request the Server has seen.
type Record struct {
	Method   string
	Path     string
	Endpoint string // the path after /v1/, e.g. "chat/completions", "models"; empty for unknown paths
	Model    string
	Stream   bool
	// Header holds the request's Authorization, OpenAI-Organization,
	// OpenAI-Project, OpenAI-Beta, Idempotency-Key and Content-Type headers.
	Header http.Header
	// Status is the answer's HTTP status; 0 while none has been sent, and for
	// ever when none was (Hang).
	Status int
}

var recordedHeaders = []string{"Authorization", "OpenAI-Organization", "OpenAI-Project", "OpenAI-Beta", "Idempotency-Key", "Content-Type"}

// Server is the stand-in API. Its methods are safe for concurrent use.
type Server struct {
	opts Options

	mu       sync.Mutex
	fault    Fault
	seq      int
	records  []*Record
	charges  []Charge
	prefixes map[uint64]bool // prompt-cache prefixes already seen, by hash
}

var _ http.Handler = (*Server)(nil)

// New returns a Server configured by opts.
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{opts: opts, prefixes: map[uint64]bool{}}
}

// SetFault makes the Server inject f into the answers of the requests that
// arrive from now on, until it is changed again.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Reset forgets the requests, charges, fault and prompt cache.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault, s.seq, s.records, s.charges = None, 0, nil, nil
	s.prefixes = map[uint64]bool{}
}

// Requests returns every request seen since New or Reset, in arrival order.
func (s *Server) Requests() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, len(s.records))
	for i, r := range s.records {
		out[i] = *r
		out[i].Header = r.Header.Clone()
	}
	return out
}

// ServeHTTP answers one API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	endpoint, serve := s.route(r.Method, r.URL.Path)
	rec := &Record{Method: r.Method, Path: r.URL.Path, Endpoint: endpoint, Header: http.Header{}}
	for _, k := range recordedHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			rec.Header[http.CanonicalHeaderKey(k)] = v
		}
	}
	s.mu.Lock()
	s.records = append(s.records, rec)
	s.seq++
	x := &exchange{s: s, w: w, r: r, rec: rec, fault: s.fault, n: s.seq}
	s.mu.Unlock()

	h := w.Header()
	h.Set("X-Request-Id", x.id("req_"))
	h.Set("OpenAI-Version", "2020-10-01")
	h.Set("OpenAI-Processing-Ms", "0")
	if endpoint == "standin-files" {
		s.file(x)
		return
	}
	if !s.authorized(x) {
		return
	}
	if s.opts.Latency > 0 {
		t := time.NewTimer(s.opts.Latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
	if serve == nil {
		x.fail(http.StatusNotFound, "invalid_request_error", "", "", fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	serve(x)
}

// route maps a request to its endpoint name and handler; the handler is nil
// for paths the API does not have.
func (s *Server) route(method, path string) (string, func(*exchange)) {
	switch method + " " + path {
	case "POST /v1/chat/completions":
		return "chat/completions", s.chat
	case "POST /v1/responses":
		return "responses", s.responses
	case "POST /v1/embeddings":
		return "embeddings", s.embeddings
	case "POST /v1/audio/speech":
		return "audio/speech", s.speech
	case "POST /v1/audio/transcriptions":
		return "audio/transcriptions", func(x *exchange) { s.transcribe(x, false) }
	case "POST /v1/audio/translations":
		return "audio/translations", func(x *exchange) { s.transcribe(x, true) }
	case "POST /v1/images/generations":
		return "images/generations", s.generateImages
	case "POST /v1/images/edits":
		return "images/edits", s.uploadImages
	case "POST /v1/images/variations":
		return "images/variations", s.uploadImages
	case "POST /v1/moderations":
		return "moderations", s.moderations
	case "GET /v1/models":
		return "models", s.listModels
	}
	switch {
	case method == http.MethodGet && strings.HasPrefix(path, "/v1/models/"):
		return "models", s.retrieveModel
	case method == http.MethodGet && strings.HasPrefix(path, filesPath):
		return "standin-files", nil
	}
	return "", nil
}

func (s *Server) authorized(x *exchange) bool {
	if s.opts.APIKey == "" {
		return true
	}
	key, ok := strings.CutPrefix(x.r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok || key == "":
		x.fail(http.StatusUnauthorized, "invalid_request_error", "", "", "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from https://platform.openai.com/account/api-keys.")
	case subtle.ConstantTimeCompare([]byte(key), []byte(s.opts.APIKey)) != 1:
		x.fail(http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "",
			"Incorrect API key provided: "+maskKey(key)+". You can find your API key at https://platform.openai.com/account/api-keys.")
	default:
		return true
	}
	return false
}

// maskKey hides all of a key but its first three and last four characters, as
// the real API's 401 message does.
func maskKey(k string) string {
	if len(k) < 8 {
		return strings.Repeat("*", len(k))
	}
	return k[:3] + strings.Repeat("*", len(k)-7) + k[len(k)-4:]
}

// obj is a JSON object under construction; encoding/json sorts its keys, so
// bodies are byte-for-byte stable.
type obj = map[string]any

// exchange is one request being answered.
type exchange struct {
	s     *Server
	w     http.ResponseWriter
	r     *http.Request
	rec   *Record
	fault Fault
	n     int // the request's number since New or Reset
}

// id returns an object id such as "chatcmpl-standin-000042", unique until Reset.
func (x *exchange) id(prefix string) string {
	return fmt.Sprintf("%sstandin-%06d", prefix, x.n)
}

func (x *exchange) now() int64 { return x.s.opts.Now().Unix() }

// note records the model and streaming flag a request asked for.
func (x *exchange) note(model string, stream bool) {
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	x.rec.Model, x.rec.Stream = model, stream
}

func (x *exchange) header(status int) {
	x.s.mu.Lock()
	x.rec.Status = status
	x.s.mu.Unlock()
	x.w.WriteHeader(status)
}

// fail answers with the API's error body; empty param and code become null.
func (x *exchange) fail(status int, typ, code, param, message string) {
	orNull := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	body, _ := json.Marshal(obj{"error": obj{"message": message, "type": typ, "param": orNull(param), "code": orNull(code)}})
	x.w.Header().Set("Content-Type", "application/json")
	x.header(status)
	x.w.Write(append(body, '\n'))
}

// invalid answers 400 invalid_request_error.
func (x *exchange) invalid(param, code, format string, args ...any) {
	x.fail(http.StatusBadRequest, "invalid_request_error", code, param, fmt.Sprintf(format, args...))
}

func (x *exchange) missing(param string) {
	x.invalid(param, "missing_required_parameter", "Missing required parameter: '%s'.", param)
}

// bodyError answers a failure to read the request body: 413 when it was too
// large, 400 otherwise.
func (x *exchange) bodyError(err error) {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		x.fail(http.StatusRequestEntityTooLarge, "invalid_request_error", "", "", fmt.Sprintf("Maximum content size limit (%d) exceeded.", maxBody))
		return
	}
	x.invalid("", "", "Could not read the request body: %v.", err)
}

// decode reads the JSON request body into v, answering 400 when it cannot.
func (x *exchange) decode(v any) bool {
	body, err := io.ReadAll(x.r.Body)
	if err != nil {
		x.bodyError(err)
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field != "" {
			x.invalid(te.Field, "invalid_type", "Invalid type for '%s': expected %s, but got %s instead.", te.Field, te.Type, te.Value)
		} else {
			x.invalid("", "", "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)")
		}
		return false
	}
	return true
}

// injected answers with the current fault unless it is None or DieMidStream,
// and reports whether it did.
func (x *exchange) injected() bool {
	switch x.fault {
	case Status500:
		x.fail(http.StatusInternalServerError, "server_error", "", "", "The server had an error while processing your request. Sorry about that!")
	case Status429:
		h := x.w.Header()
		h.Set("Retry-After", "1")
		h.Set("X-Ratelimit-Limit-Requests", "3")
		h.Set("X-Ratelimit-Remaining-Requests", "0")
		h.Set("X-Ratelimit-Reset-Requests", "1s")
		x.fail(http.StatusTooManyRequests, "requests", "rate_limit_exceeded", "",
			"Rate limit reached in organization org-standin on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1s.")
	case Hang:
		<-x.r.Context().Done()
		panic(http.ErrAbortHandler)
	default:
		return false
	}
	return true
}

// json answers 200 with v as JSON; see reply.
func (x *exchange) json(v any, u *Units) {
	body, _ := json.Marshal(v)
	x.reply("application/json", append(body, '\n'), u)
}

// reply answers 200 with body and bills u (nil for free answers), unless a
// fault is injected. The charge is recorded before the body goes out, so a
// client that has read an answer always finds it in Charges.
func (x *exchange) reply(contentType string, body []byte, u *Units) {
	if x.injected() {
		return
	}
	if u != nil {
		x.s.bill(x.rec.Endpoint, x.rec.Model, *u)
	}
	h := x.w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	x.header(http.StatusOK)
	if x.fault == DieMidStream {
		x.w.Write(body[:len(body)/2])
		http.NewResponseController(x.w).Flush()
		panic(http.ErrAbortHandler)
	}
	x.w.Write(body)
}

// event is one server-sent event of a stream.
type event struct {
	name   string // the "event:" field; empty for chat completion chunks
	data   []byte
	tokens int // output tokens generated once this event is sent, counted from the start
}

// newEvent marshals v into an event.
func newEvent(name string, v any, tokens int) event {
	data, _ := json.Marshal(v)
	return event{name: name, data: data, tokens: tokens}
}

// stream answers 200 with events as text/event-stream, flushing each, unless a
// fault is injected. units tells what the stream bills once the first n output
// tokens are out: the whole stream is billed before it starts, and the bill is
// cut down when the stream is cut short (DieMidStream, or the client leaving).
func (x *exchange) stream(events []event, units func(outputTokens int) Units) {
	if x.injected() {
		return
	}
	last := len(events) - 1
	if x.fault == DieMidStream {
		last = max(len(events)/2, 1) - 1
	}
	charge := x.s.bill(x.rec.Endpoint, x.rec.Model, units(events[last].tokens))
	h := x.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	x.header(http.StatusOK)
	rc := http.NewResponseController(x.w)
	for _, e := range events[:last+1] {
		var b []byte
		if e.name != "" {
			b = fmt.Appendf(b, "event: %s\n", e.name)
		}
		b = fmt.Appendf(b, "data: %s\n\n", e.data)
		if _, err := x.w.Write(b); err != nil || rc.Flush() != nil {
			x.s.rebill(charge, units(e.tokens))
			return
		}
	}
	if x.fault == DieMidStream {
		panic(http.ErrAbortHandler)
	}
}
