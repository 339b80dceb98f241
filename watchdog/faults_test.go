package watchdog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/notify"
	"github.com/keycap/keycap/watchdog/problem"
	"github.com/keycap/keycap/watchdog/standin"
)

// faultRig is an engine whose upstream transport the test owns, so that it
// can close its idle connections before counting goroutines.
type faultRig struct {
	w      *Watchdog
	tr     *http.Transport
	client *http.Client
	tok    string
	tokID  string
	logs   *bytes.Buffer
	cancel context.CancelFunc
	done   chan error
}

func mustFaultRig(tb testing.TB, upstream string, tr *http.Transport) *faultRig {
	tb.Helper()
	r := &faultRig{tr: tr, logs: &bytes.Buffer{}, done: make(chan error, 1),
		client: &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}}
	// The faults repeat one request: the guards would step in.
	home := tb.TempDir()
	cfg := config.Default()
	cfg.Guards.LoopWarnAt, cfg.Guards.LoopBlockAt, cfg.Guards.RateFraction, cfg.Guards.RetryStormAt = 0, 0, 0, 0
	if err := config.Save(filepath.Join(home, config.FileName), cfg); err != nil {
		tb.Fatal(err)
	}
	w, err := Open(Options{Home: home, Listen: "127.0.0.1:0", Upstream: upstream, Transport: tr, NoControl: true, Notifier: notify.Discard{},
		Key:    func() (string, error) { return realKey, nil },
		Logger: slog.New(slog.NewTextHandler(lockedWriter{r.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		tb.Fatal(err)
	}
	r.w = w
	tok, info, err := w.IssueToken(context.Background(), "faults", time.Hour, 0)
	if err != nil {
		tb.Fatal(err)
	}
	r.tok, r.tokID = tok, info.ID
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(context.Background())
	go func() { r.done <- w.Run(ctx) }()
	tb.Cleanup(func() {
		r.cancel()
		<-r.done
		w.Close()
	})
	return r
}

// post sends a request through the engine and returns the status and body.
func (r *faultRig) post(ctx context.Context, path, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.w.ProxyURL()+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+r.tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// quiet closes every idle connection the rig's clients hold.
func (r *faultRig) quiet() {
	r.client.CloseIdleConnections()
	r.tr.CloseIdleConnections()
}

// mustSettle waits until nothing is reserved, in the budget (the day's and
// the token's) or in the ledger, and returns the ledger's requests.
func (r *faultRig) mustSettle(tb testing.TB) []ledger.Entry {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		es, err := r.w.Ledger().Recent(context.Background(), 1000)
		if err != nil {
			tb.Fatal(err)
		}
		open := 0
		for _, e := range es {
			if e.State == ledger.Reserved {
				open++
			}
		}
		_, tokReserved := r.w.budget.TokenSpent(r.tokID)
		st := r.w.Status()
		if open == 0 && st.Reserved == 0 && tokReserved == 0 {
			return es
		}
		if time.Now().After(deadline) {
			tb.Fatalf("reservations leaked: %d open in the ledger, %s in today's budget, %s on the token", open, st.Reserved, tokReserved)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mustGoroutinesBack waits until the goroutine count is back to baseline,
// and dumps the goroutines if it never is.
func mustGoroutinesBack(tb testing.TB, baseline int, quiet func()) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		quiet()
		n := runtime.NumGoroutine()
		if n <= baseline {
			return
		}
		if time.Now().After(deadline) {
			var b bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			tb.Fatalf("%d goroutines, %d before the faults:\n%s", n, baseline, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func errorMessage(b []byte) string {
	var e problem.Body
	json.Unmarshal(b, &e)
	return e.Error.Message
}

const faultChat = `{"model":"gpt-4o-mini","max_completion_tokens":200,"messages":[{"role":"user","content":"Tell me about London."}]}`
const faultStream = `{"model":"gpt-4o-mini","max_completion_tokens":200,"stream":true,"messages":[{"role":"user","content":"Tell me about Paris."}]}`

// TestUpstreamFaultsLeakNothing injects every way the upstream can fail —
// refused connections, a hang past the timeout, a 500, a connection reset
// mid-body and mid-stream, a client giving up — and checks each is charged
// as designed (nothing when the request never left, the estimate when it
// may have been billed), answered with a sentence a person can read, and
// leaves no reservation and no goroutine behind.
func TestUpstreamFaultsLeakNothing(t *testing.T) {
	prices := loadPrices(t)
	api := standin.New(standin.Options{APIKey: realKey, Prices: prices})
	up := httptest.NewServer(api)
	defer up.Close()
	// An address nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/v1"
	ln.Close()

	tr := defaultTransport()
	tr.ResponseHeaderTimeout = 2 * time.Second // the "timeout" fault waits this long
	r := mustFaultRig(t, up.URL+"/v1", tr)
	// Warm up, then count: later goroutines are the faults' doing.
	if status, b, err := r.post(context.Background(), "/chat/completions", faultChat); err != nil || status != 200 {
		t.Fatalf("warm-up: %d %v %s", status, err, b)
	}
	r.mustSettle(t)
	r.quiet()
	time.Sleep(100 * time.Millisecond)
	baseline := runtime.NumGoroutine()

	type outcome struct {
		status  int    // what the client gets; 0 when the body is cut short
		message string // part of the error message
		charged string // "nothing" or "estimate"
	}
	faults := []struct {
		name   string
		body   string
		setup  func()
		client func() (context.Context, context.CancelFunc)
		want   outcome
	}{
		{"connection refused", faultChat, func() { setUpstream(t, r.w, refused) }, nil,
			outcome{http.StatusBadGateway, "keycap: could not reach the OpenAI API (connection refused)", "nothing"}},
		{"timeout", faultChat, func() { api.SetFault(standin.Hang) }, nil,
			outcome{http.StatusBadGateway, "the request was counted at its estimate in case it was billed (timed out)", "estimate"}},
		{"500", faultChat, func() { api.SetFault(standin.Status500) }, nil,
			outcome{http.StatusInternalServerError, "The server had an error while processing your request", "estimate"}},
		{"reset mid-body", faultChat, func() { api.SetFault(standin.DieMidStream) }, nil,
			outcome{0, "", "estimate"}},
		{"reset mid-stream", faultStream, func() { api.SetFault(standin.DieMidStream) }, nil,
			outcome{http.StatusOK, "", "estimate"}},
		{"client gives up", faultStream, func() { api.SetFault(standin.Hang) },
			func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 300*time.Millisecond)
			},
			outcome{-1, "", "estimate"}},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			api.Reset()
			setUpstream(t, r.w, up.URL+"/v1")
			f.setup()
			defer api.SetFault(standin.None)
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if f.client != nil {
				ctx, cancel = f.client()
			}
			defer cancel()
			before, _ := r.w.Ledger().Recent(context.Background(), 1)
			status, body, err := r.post(ctx, "/chat/completions", f.body)
			switch {
			case f.want.status == -1:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("the client did not give up: %d %v", status, err)
				}
			case f.want.status == 0:
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("a body cut short reached the client as %d %v %q", status, err, body)
				}
			case status != f.want.status:
				t.Errorf("status %d (%v), want %d: %s", status, err, f.want.status, body)
			case f.want.message != "" && !strings.Contains(errorMessage(body), f.want.message):
				t.Errorf("message %q, want it to say %q", errorMessage(body), f.want.message)
			case f.want.status == http.StatusOK && bytes.Contains(body, []byte("[DONE]")):
				t.Errorf("a stream cut short ended with [DONE]: %s", body)
			default:
				if m := errorMessage(body); m != "" {
					t.Logf("the client read: %s", m)
				}
			}
			es := r.mustSettle(t)
			if len(es) == 0 || (len(before) > 0 && es[0].ID == before[0].ID) {
				t.Fatalf("no ledger row for the request")
			}
			e := es[0]
			bill := money.FromFloat(api.Bill())
			switch f.want.charged {
			case "nothing":
				if e.Cost != 0 {
					t.Errorf("charged %s (%s) for a request that never left", e.Cost, e.Note)
				}
			case "estimate":
				if e.Cost != e.Estimate || e.Exact || e.Cost < bill {
					t.Errorf("charged %s (exact %v, %q), want the estimate %s, flagged; the upstream billed %s", e.Cost, e.Exact, e.Note, e.Estimate, bill)
				}
			}
			t.Logf("charged %s of estimate %s (upstream billed %s): %s", e.Cost, e.Estimate, bill, e.Note)
			if st := r.w.Status(); st.Spent < bill {
				t.Errorf("today's spend %s is below the upstream's bill %s", st.Spent, bill)
			}
		})
	}
	setUpstream(t, r.w, up.URL+"/v1")
	mustGoroutinesBack(t, baseline, r.quiet)
}

// setUpstream points the engine at another upstream, as Settings would.
func setUpstream(tb testing.TB, w *Watchdog, upstream string) {
	tb.Helper()
	cfg := w.Config()
	cfg.Upstream = upstream
	if err := w.applyConfig(cfg); err != nil {
		tb.Fatal(err)
	}
}

// TestSlowClientThatReadsNothing has a script ask for a long stream and
// never read it. The engine must not buffer the stream (the upstream is
// held back instead), must keep serving others, and once the script goes
// away must charge the estimate, release everything and leak nothing.
func TestSlowClientThatReadsNothing(t *testing.T) {
	const total = 64 << 20
	var written atomic.Int64
	finished := make(chan struct{}, 1)
	chunk := fmt.Sprintf(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":%q}}]}`+"\n\n", strings.Repeat("x", 16<<10))
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if !strings.Contains(r.Header.Get("Authorization"), realKey) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.Header.Get("X-Test") != "big" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		defer func() { finished <- struct{}{} }()
		for written.Load() < total {
			n, err := io.WriteString(w, chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
		io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":4000,"total_tokens":4005}}`+"\n\ndata: [DONE]\n\n")
	}))
	defer big.Close()

	tr := defaultTransport()
	r := mustFaultRig(t, big.URL+"/v1", tr)
	if status, b, err := r.post(context.Background(), "/chat/completions", faultChat); err != nil || status != 200 {
		t.Fatalf("warm-up: %d %v %s", status, err, b)
	}
	r.mustSettle(t)
	r.quiet()
	time.Sleep(100 * time.Millisecond)
	baseline := runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapInuse

	// The script: a request, then nothing read, with a small window.
	addr := strings.TrimPrefix(strings.TrimSuffix(r.w.ProxyURL(), "/v1"), "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nX-Test: big\r\nContent-Length: %d\r\n\r\n%s",
		addr, r.tok, len(faultStream), faultStream)
	// Wait until the upstream is held back: it stops writing.
	var last int64 = -1
	for stalls := 0; stalls < 5; {
		time.Sleep(100 * time.Millisecond)
		if n := written.Load(); n == last {
			stalls++
		} else {
			last, stalls = n, 0
		}
	}
	if n := written.Load(); n >= total {
		t.Fatalf("the upstream wrote the whole %d MB stream to a client that read nothing: the engine buffered it", total>>20)
	} else {
		t.Logf("upstream held back after %.1f MB of %d MB", float64(n)/(1<<20), total>>20)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if grew := int64(ms.HeapInuse) - int64(heapBefore); grew > 8<<20 {
		t.Errorf("the heap grew by %.1f MB while the client read nothing", float64(grew)/(1<<20))
	}
	// Others are served meanwhile.
	if status, b, err := r.post(context.Background(), "/chat/completions", faultChat); err != nil || status != 200 {
		t.Errorf("another script during the stall: %d %v %s", status, err, b)
	}
	if st := r.w.Status(); st.Reserved == 0 {
		t.Errorf("the stalled stream holds no reservation")
	}
	// The script goes away without reading.
	conn.Close()
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		t.Fatal("the upstream handler never learned the client had gone")
	}
	es := r.mustSettle(t)
	var stalled ledger.Entry
	for _, e := range es {
		if e.Stream {
			stalled = e
		}
	}
	if stalled.ID == 0 || stalled.Cost != stalled.Estimate || stalled.Exact {
		t.Errorf("the abandoned stream was charged %+v, want its estimate", stalled)
	}
	mustGoroutinesBack(t, baseline, r.quiet)
}
