package watchdog

// Benchmarks of what keycap adds to a request, measured side by side with
// the two paths it is judged against, in one run and against one local
// fake upstream: direct, and through a bare httputil.ReverseProxy (the
// floor: what any extra loopback hop costs on this machine). They report
// custom metrics and never fail on slowness; BENCHMARKS.md explains them.
//
//	go test -run '^$' -bench . -benchtime 3s ./watchdog

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/meter"
	"github.com/keycap/keycap/watchdog/notify"
)

// benchEpoch is the clock the fake upstream stamps stream chunks with, so
// a client in the same process can tell how long each chunk took.
var benchEpoch = time.Now()

const (
	benchChatBody   = `{"model":"gpt-4o-mini","max_completion_tokens":16,"messages":[{"role":"user","content":"How much is a ticket to London?"}]}`
	benchStreamBody = `{"model":"gpt-4o-mini","max_completion_tokens":16,"stream":true,"messages":[{"role":"user","content":"How much is a ticket to London?"}]}`
	benchChatReply  = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"A ticket to London is $799."},"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":9,"total_tokens":23}}` + "\n"
	// A stream's chunks and the pause between them: long enough that a
	// proxy that buffered would show it in every chunk's delay.
	benchChunks   = 20
	benchInterval = 2 * time.Millisecond
)

// fakeUpstream answers chat completions as cheaply as a server can, so
// that what is measured is the paths, not the upstream.
func fakeUpstream(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if !bytes.Contains(body, []byte(`"stream":true`)) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(benchChatReply)))
		io.WriteString(w, benchChatReply)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	t := time.NewTicker(benchInterval)
	defer t.Stop()
	for i := range benchChunks {
		if i > 0 {
			<-t.C
		}
		// The id carries the moment the chunk was sent.
		fmt.Fprintf(w, `data: {"id":"t%d","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"word "}}]}`+"\n\n", time.Since(benchEpoch))
		if rc.Flush() != nil {
			return
		}
	}
	io.WriteString(w, `data: {"id":"u","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":14,"completion_tokens":20,"total_tokens":34}}`+"\n\ndata: [DONE]\n\n")
	rc.Flush()
}

// benchPath is one way to reach the fake upstream.
type benchPath struct {
	name   string
	url    string // the chat completions URL
	auth   string
	client *http.Client
}

func (p *benchPath) request(body string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, p.url, bytes.NewReader([]byte(body)))
	req.Header.Set("Authorization", "Bearer "+p.auth)
	req.Header.Set("Content-Type", "application/json")
	return req
}

// do sends one non-streaming request and reads the whole answer.
func (p *benchPath) do(tb testing.TB) {
	resp, err := p.client.Do(p.request(benchChatBody))
	if err != nil {
		tb.Fatalf("%s: %v", p.name, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s: status %d", p.name, resp.StatusCode)
	}
}

// benchPaths starts the fake upstream, a bare reverse proxy in front of it
// and a keycap engine in front of it (with its ledger on disk), and returns
// the three paths: direct, floor, keycap.
func benchPaths(tb testing.TB) []*benchPath {
	tb.Helper()
	serve := func(h http.Handler) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		tb.Cleanup(func() { srv.Close() })
		return "http://" + ln.Addr().String()
	}
	up := serve(http.HandlerFunc(fakeUpstream))
	upURL, _ := url.Parse(up)
	floor := serve(&httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(upURL) },
		Transport:     defaultTransport(),
		FlushInterval: -1,
	})

	home := tb.TempDir()
	cfg := config.Default()
	cfg.DailyCapUSD = 1e6
	// The benchmarks repeat one request: the loop guard would block it.
	cfg.Guards.LoopWarnAt, cfg.Guards.LoopBlockAt, cfg.Guards.RateFraction, cfg.Guards.RetryStormAt = 0, 0, 0, 0
	if err := config.Save(filepath.Join(home, config.FileName), cfg); err != nil {
		tb.Fatal(err)
	}
	w, err := Open(Options{Home: home, Listen: "127.0.0.1:0", Upstream: up + "/v1", NoControl: true, Notifier: notify.Discard{},
		Key: func() (string, error) { return realKey, nil }})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		<-done
		w.Close()
	})
	tok, _, err := w.IssueToken(context.Background(), "bench", 24*time.Hour, 0)
	if err != nil {
		tb.Fatal(err)
	}

	client := func() *http.Client {
		return &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, DisableCompression: true}}
	}
	paths := []*benchPath{
		{name: "direct", url: up + "/v1/chat/completions", auth: realKey, client: client()},
		{name: "floor", url: floor + "/v1/chat/completions", auth: realKey, client: client()},
		{name: "keycap", url: w.ProxyURL() + "/chat/completions", auth: tok, client: client()},
	}
	for _, p := range paths { // warm up connections and code paths
		for range 50 {
			p.do(tb)
		}
	}
	return paths
}

// percentile returns the p-th percentile (0–100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// ratio is keycap's added cost over the floor's; 0 when the floor added
// nothing measurable.
func ratio(keycap, floor time.Duration) float64 {
	if floor <= 0 {
		return 0
	}
	return float64(keycap) / float64(floor)
}

// BenchmarkLatencyC1 sends one request at a time, taking turns between
// the three paths, and reports each path's p50 and p99 and what the floor
// and keycap add to the direct path's.
func BenchmarkLatencyC1(b *testing.B) {
	paths := benchPaths(b)
	lat := make([][]time.Duration, len(paths))
	b.ResetTimer()
	for range b.N {
		for i, p := range paths {
			start := time.Now()
			p.do(b)
			lat[i] = append(lat[i], time.Since(start))
		}
	}
	b.StopTimer()
	var p50, p99 [3]time.Duration
	for i := range paths {
		slices.Sort(lat[i])
		p50[i], p99[i] = percentile(lat[i], 50), percentile(lat[i], 99)
	}
	b.ReportMetric(us(p50[0]), "direct-p50-µs")
	b.ReportMetric(us(p99[0]), "direct-p99-µs")
	b.ReportMetric(us(p50[1]-p50[0]), "floor-added-p50-µs")
	b.ReportMetric(us(p99[1]-p99[0]), "floor-added-p99-µs")
	b.ReportMetric(us(p50[2]-p50[0]), "keycap-added-p50-µs")
	b.ReportMetric(us(p99[2]-p99[0]), "keycap-added-p99-µs")
	b.ReportMetric(ratio(p50[2]-p50[0], p50[1]-p50[0]), "ratio-p50")
	b.ReportMetric(ratio(p99[2]-p99[0], p99[1]-p99[0]), "ratio-p99")
}

// BenchmarkThroughputC64 has 64 clients send requests as fast as they can,
// each path in turn for a share of b.N, and reports requests per second
// and keycap's share of the floor's.
func BenchmarkThroughputC64(b *testing.B) {
	const workers = 64
	paths := benchPaths(b)
	elapsed := make([]time.Duration, len(paths))
	done := make([]int, len(paths))
	rounds := 4
	b.ResetTimer()
	for round := range rounds {
		n := b.N / rounds
		if round == rounds-1 {
			n = b.N - n*(rounds-1)
		}
		for i, p := range paths {
			var wg sync.WaitGroup
			next := make(chan struct{}, n)
			for range n {
				next <- struct{}{}
			}
			close(next)
			start := time.Now()
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range next {
						p.do(b)
					}
				}()
			}
			wg.Wait()
			elapsed[i] += time.Since(start)
			done[i] += n
		}
	}
	b.StopTimer()
	rps := make([]float64, len(paths))
	for i := range paths {
		rps[i] = float64(done[i]) / elapsed[i].Seconds()
	}
	b.ReportMetric(rps[0], "direct-req/s")
	b.ReportMetric(rps[1], "floor-req/s")
	b.ReportMetric(rps[2], "keycap-req/s")
	b.ReportMetric(100*rps[1]/rps[0], "floor-%-of-direct")
	b.ReportMetric(100*rps[2]/rps[1], "keycap-%-of-floor")
}

// stream sends one streaming request and returns the time to its first
// byte and each chunk's delay from the upstream's write to this read.
func (p *benchPath) stream(tb testing.TB) (ttfb time.Duration, delays []time.Duration) {
	start := time.Now()
	resp, err := p.client.Do(p.request(benchStreamBody))
	if err != nil {
		tb.Fatalf("%s: %v", p.name, err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first := true
	var lastErr error
	for {
		line, err := br.ReadSlice('\n')
		lastErr = err
		now := time.Since(benchEpoch)
		if first && len(line) > 0 {
			ttfb, first = time.Since(start), false
		}
		if i := bytes.Index(line, []byte(`"id":"t`)); i >= 0 {
			rest := line[i+7:]
			if j := bytes.IndexByte(rest, '"'); j > 0 {
				sent, _ := strconv.ParseInt(string(rest[:j]), 10, 64)
				delays = append(delays, now-time.Duration(sent))
			}
		}
		if err != nil {
			break
		}
	}
	if len(delays) != benchChunks {
		// Counted, not fatal: see BenchmarkStreaming's *-cut metrics.
		tb.Logf("%s: a stream ended after %d of %d chunks (%v)", p.name, len(delays), benchChunks, lastErr)
		return ttfb, nil
	}
	return ttfb, delays
}

// BenchmarkStreaming reads streams of 20 chunks 2 ms apart through each
// path in turn, and reports the time to first byte and the delay of each
// chunk, and what the floor and keycap add to them. A proxy that held
// chunks back would show it as milliseconds of per-chunk delay.
func BenchmarkStreaming(b *testing.B) {
	paths := benchPaths(b)
	ttfb := make([][]time.Duration, len(paths))
	chunk := make([][]time.Duration, len(paths))
	cut := make([]int, len(paths))
	b.ResetTimer()
	for range b.N {
		for i, p := range paths {
			t, d := p.stream(b)
			if d == nil {
				cut[i]++
				continue
			}
			ttfb[i] = append(ttfb[i], t)
			chunk[i] = append(chunk[i], d...)
		}
	}
	for i, p := range paths {
		if len(ttfb[i]) == 0 {
			b.Fatalf("%s: every stream was cut short", p.name)
		}
		b.ReportMetric(float64(cut[i]), p.name+"-streams-cut")
	}
	b.StopTimer()
	var t50, c50, c99, cmax [3]time.Duration
	for i := range paths {
		slices.Sort(ttfb[i])
		slices.Sort(chunk[i])
		t50[i] = percentile(ttfb[i], 50)
		c50[i], c99[i], cmax[i] = percentile(chunk[i], 50), percentile(chunk[i], 99), chunk[i][len(chunk[i])-1]
	}
	b.ReportMetric(us(t50[0]), "direct-ttfb-p50-µs")
	b.ReportMetric(us(t50[1]-t50[0]), "floor-ttfb-added-p50-µs")
	b.ReportMetric(us(t50[2]-t50[0]), "keycap-ttfb-added-p50-µs")
	b.ReportMetric(ratio(t50[2]-t50[0], t50[1]-t50[0]), "ttfb-ratio")
	b.ReportMetric(us(c50[0]), "direct-chunk-p50-µs")
	b.ReportMetric(us(c50[1]-c50[0]), "floor-chunk-added-p50-µs")
	b.ReportMetric(us(c50[2]-c50[0]), "keycap-chunk-added-p50-µs")
	b.ReportMetric(us(c99[2]-c99[0]), "keycap-chunk-added-p99-µs")
	b.ReportMetric(ratio(c50[2]-c50[0], c50[1]-c50[0]), "chunk-ratio")
	b.ReportMetric(us(cmax[2]), "keycap-chunk-max-µs")
}

// BenchmarkLedgerSettle writes what one request costs the ledger — its
// reservation, then its settlement — one request at a time and from 64
// goroutines at once, and reports settled requests per second.
func BenchmarkLedgerSettle(b *testing.B) {
	for _, par := range []int{1, 64} {
		b.Run(fmt.Sprintf("c%d", par), func(b *testing.B) {
			db, err := ledger.Open(filepath.Join(b.TempDir(), "ledger.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			day := time.Now().Format(time.DateOnly)
			one := func() {
				now := time.Now()
				id, err := db.Reserve(ctx, ledger.Entry{Start: now, Day: day, TokenID: "tok_bench", Label: "bench", Method: "POST",
					Path: "/chat/completions", Endpoint: "chat.completions", Model: "gpt-4o-mini", Estimate: 120})
				if err != nil {
					b.Fatal(err)
				}
				s := meter.Settlement{Cost: 7, Exact: true}
				s.Units.Input, s.Units.Output = 14, 9
				if err := db.Settle(ctx, id, now, s, 200, "req_1"); err != nil {
					b.Fatal(err)
				}
			}
			start := time.Now()
			b.ResetTimer()
			if par == 1 {
				for range b.N {
					one()
				}
			} else {
				b.SetParallelism(max(1, par/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						one()
					}
				})
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "settled/s")
		})
	}
}

// BenchmarkOpenWithMillionRows times engine start-up (Open and Close:
// lock, config, ledger, recovery, today's totals, live tokens) with a
// ledger of one million requests, spread over a year or all of them today.
func BenchmarkOpenWithMillionRows(b *testing.B) {
	for _, spread := range []string{"year", "today"} {
		b.Run(spread, func(b *testing.B) {
			home := b.TempDir()
			if err := BuildBenchLedger(filepath.Join(home, "ledger.db"), 1_000_000, spread == "today", time.Now()); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				w, err := Open(Options{Home: home, Listen: "127.0.0.1:0", NoControl: true, Notifier: notify.Discard{}, Key: func() (string, error) { return realKey, nil }})
				if err != nil {
					b.Fatal(err)
				}
				w.Close()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/start")
		})
	}
}

// BuildBenchLedger writes a ledger of n settled requests (and a token for
// every thousand) straight into SQLite in one transaction: over the year
// before now, or all on now's day when today is set. BENCHMARKS.md's tool
// builds its ledger the same way.
func BuildBenchLedger(path string, n int, today bool, now time.Time) error {
	db, err := ledger.Open(path)
	if err != nil {
		return err
	}
	db.Close()
	return fillLedger(path, n, today, now)
}

// fillLedger is BuildBenchLedger's raw SQL, kept apart so that the tool
// under cmd/keycap/testdata/bench can copy it.
func fillLedger(path string, n int, today bool, now time.Time) error {
	raw, err := sqlOpen(path)
	if err != nil {
		return err
	}
	defer raw.Close()
	tx, err := raw.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ins, err := tx.Prepare(`INSERT INTO requests (started_at, finished_at, day, token_id, label, method, path, endpoint, model, card,
		stream, estimate, cost, state, exact, input_tokens, output_tokens, status, upstream_request_id)
		VALUES (?,?,?,?,?,'POST','/chat/completions','chat.completions',?,?,?,?,?,'settled',1,?,?,200,?)`)
	if err != nil {
		return err
	}
	models := []string{"gpt-4o-mini", "gpt-4o", "tts-1", "text-embedding-3-small", "dall-e-3"}
	labels := []string{"notebook", "day5.py", "airline.py", "terminal", "shell"}
	span := 365 * 24 * time.Hour
	for i := range n {
		at := now.Add(-time.Duration(int64(span) / int64(n) * int64(n-i)))
		if today {
			at = now.Add(-time.Duration(n-i) * time.Millisecond)
		}
		if _, err := ins.Exec(at.UnixMilli(), at.UnixMilli()+800, at.Format(time.DateOnly), fmt.Sprintf("tok_%08x", i/1000), labels[i%len(labels)],
			models[i%len(models)], models[i%len(models)], i%3 == 0, 2_000, 300+i%700, 120+i%300, 40+i%90, fmt.Sprintf("req_%d", i)); err != nil {
			return err
		}
	}
	tok, err := tx.Prepare(`INSERT INTO tokens (id, hash, label, created_at, expires_at) VALUES (?,?,?,?,?)`)
	if err != nil {
		return err
	}
	for i := 0; i < n/1000; i++ {
		at := now.Add(-span + time.Duration(i)*time.Hour)
		if _, err := tok.Exec(fmt.Sprintf("tok_%08x", i), []byte(fmt.Sprintf("hash-%08x", i)), labels[i%len(labels)], at.UnixMilli(), at.Add(time.Hour).UnixMilli()); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func sqlOpen(path string) (*sql.DB, error) {
	return sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
}
