// Command bench measures what keycap's Go benchmarks cannot: the built
// binary's resident memory idle and under load, `keycap status` with a
// ledger of a million requests, `keycap serve` start-up with that ledger,
// and the tray app's memory. It runs keycap against a fake upstream in this
// process and a private Secret Service, and prints a Markdown report.
//
//	go build -o bin/keycap ./cmd/keycap
//	go run ./cmd/keycap/testdata/bench -keycap bin/keycap
package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keycap/keycap/keystore/keystoretest"
	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/control"
	"github.com/keycap/keycap/watchdog/ledger"
)

const fakeKey = "sk-proj-" + "BENCHabcdefghijklmnopqrstuvwxyz0123456789bnch"

const chatBody = `{"model":"gpt-4o-mini","max_completion_tokens":16,"messages":[{"role":"user","content":"How much is a ticket to London?"}]}`
const chatReply = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"A ticket to London is $799."},"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":9,"total_tokens":23}}` + "\n"

var (
	bin      = flag.String("keycap", "bin/keycap", "the keycap binary to measure")
	rows     = flag.Int("rows", 1_000_000, "requests in the big ledger")
	loadFor  = flag.Duration("load", 10*time.Second, "how long to run the concurrency-64 load")
	statusN  = flag.Int("status-runs", 50, "how many times to run `keycap status`")
	startN   = flag.Int("starts", 5, "how many times to start `keycap serve` on the big ledger")
	trayWait = flag.Duration("tray-wait", 8*time.Second, "how long the tray app gets to settle before its memory is read")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	abs, err := filepath.Abs(*bin)
	if err != nil {
		return err
	}
	*bin = abs
	ss, err := keystoretest.Start()
	if err != nil {
		return fmt.Errorf("start a private Secret Service: %w", err)
	}
	defer ss.Close()
	up, err := fakeUpstream()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "keycap-bench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	fmt.Printf("## Machine\n\n%s\n\n", machine())
	fmt.Printf("## keycap serve and keycap status\n\n| measurement | value |\n| --- | --- |\n")
	row := func(k, f string, a ...any) { fmt.Printf("| %s | %s |\n", k, fmt.Sprintf(f, a...)) }

	// A fresh data directory: memory idle and under load.
	home := filepath.Join(work, "fresh")
	if err := prepare(home); err != nil {
		return err
	}
	s, err := serve(home, up)
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	row("serve RSS idle, fresh ledger", "%.1f MB", mb(rss(s.pid(), "VmRSS")))
	tok, err := cli(home, "", "token", "--ttl", "24h")
	if err != nil {
		return err
	}
	n, peak, err := load(s, strings.TrimSpace(tok), 64, *loadFor)
	if err != nil {
		return err
	}
	row("serve under load (64 clients, non-streaming chat)", "%.0f req/s for %s", float64(n)/loadFor.Seconds(), *loadFor)
	row("serve RSS under load (peak of 10 samples/s)", "%.1f MB (VmHWM %.1f MB)", mb(peak), mb(rss(s.pid(), "VmHWM")))
	time.Sleep(3 * time.Second)
	row("serve RSS idle after the load", "%.1f MB", mb(rss(s.pid(), "VmRSS")))
	s.stop()

	// A ledger of a million requests: status and start-up.
	big := filepath.Join(work, "big")
	if err := prepare(big); err != nil {
		return err
	}
	start := time.Now()
	if err := fillLedger(filepath.Join(big, "ledger.db"), *rows, time.Now()); err != nil {
		return err
	}
	fi, _ := os.Stat(filepath.Join(big, "ledger.db"))
	row(fmt.Sprintf("ledger of %d requests", *rows), "%.0f MB, built in %s", float64(fi.Size())/(1<<20), time.Since(start).Round(time.Millisecond))
	var starts []time.Duration
	for i := range *startN {
		s, err = serve(big, up)
		if err != nil {
			return err
		}
		starts = append(starts, s.startup)
		if i < *startN-1 {
			s.stop()
		}
	}
	slices.Sort(starts)
	row("serve start-up with that ledger (exec to listening)", "median %s, min %s, max %s (%d starts)", ms(starts[len(starts)/2]), ms(starts[0]), ms(starts[len(starts)-1]), len(starts))
	var runs []time.Duration
	for range *statusN {
		t := time.Now()
		if _, err := cli(big, "", "status"); err != nil {
			return err
		}
		runs = append(runs, time.Since(t))
	}
	slices.Sort(runs)
	row("`keycap status` with that ledger", "median %s, p90 %s, min %s (%d runs, process start included)", ms(runs[len(runs)/2]), ms(runs[len(runs)*9/10]), ms(runs[0]), len(runs))
	var calls []time.Duration
	c := control.NewClient(big)
	for range 200 {
		t := time.Now()
		if _, err := c.Status(context.Background()); err != nil {
			return err
		}
		calls = append(calls, time.Since(t))
	}
	slices.Sort(calls)
	row("control socket status call alone", "median %s, p90 %s", ms(calls[len(calls)/2]), ms(calls[len(calls)*9/10]))
	row("serve RSS idle, million-request ledger", "%.1f MB", mb(rss(s.pid(), "VmRSS")))
	s.stop()

	fmt.Printf("\n## Tray app\n\n%s\n", tray(filepath.Join(work, "tray")))
	return nil
}

// prepare makes a data directory with the key in the keychain and a cap
// no benchmark reaches.
func prepare(home string) error {
	if err := config.EnsureHome(home); err != nil {
		return err
	}
	cfg := config.Default()
	cfg.DailyCapUSD = 1e6
	// The load repeats one request: the loop guard would block it.
	cfg.Guards.LoopWarnAt, cfg.Guards.LoopBlockAt, cfg.Guards.RateFraction, cfg.Guards.RetryStormAt = 0, 0, 0, 0
	if err := config.Save(filepath.Join(home, config.FileName), cfg); err != nil {
		return err
	}
	_, err := cli(home, fakeKey+"\n", "key", "set")
	return err
}

func cli(home, stdin string, args ...string) (string, error) {
	cmd := exec.Command(*bin, args...)
	cmd.Env = append(os.Environ(), "KEYCAP_HOME="+home)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("keycap %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

type server struct {
	cmd     *exec.Cmd
	url     string
	startup time.Duration
	done    chan struct{}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

var banner = regexp.MustCompile(`keycap is serving (http://\S+/v1) `)

func serve(home, upstream string) (*server, error) {
	cmd := exec.Command(*bin, "serve", "--listen", "127.0.0.1:0", "--upstream", upstream)
	cmd.Env = append(os.Environ(), "KEYCAP_HOME="+home)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			if m := banner.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		cmd.Wait()
		close(s.done)
	}()
	select {
	case s.url = <-found:
		s.startup = time.Since(start)
	case <-s.done:
		return nil, fmt.Errorf("keycap serve exited before listening")
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		return nil, fmt.Errorf("keycap serve did not start in 2 minutes")
	}
	return s, nil
}

// load has c clients send non-streaming requests for d, and returns how
// many were answered and the highest resident size seen.
func load(s *server, tok string, c int, d time.Duration) (int64, int64, error) {
	var n, failed atomic.Int64
	var peak atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c}}
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/chat/completions", strings.NewReader(chatBody))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					n.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		<-tick.C
		if v := rss(s.pid(), "VmRSS"); v > peak.Load() {
			peak.Store(v)
		}
	}
	wg.Wait()
	if f := failed.Load(); f > n.Load()/100 {
		return 0, 0, fmt.Errorf("%d of %d requests failed under load", f, f+n.Load())
	}
	return n.Load(), peak.Load(), nil
}

// tray starts `keycap` with no arguments and reads its memory once it has
// settled, or says why it could not.
func tray(home string) string {
	if err := prepare(home); err != nil {
		return "not measured: " + err.Error()
	}
	cmd := exec.Command(*bin)
	cmd.Env = append(os.Environ(), "KEYCAP_HOME="+home)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "not measured: " + err.Error()
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return fmt.Sprintf("| tray app RSS idle | **not measured**: `keycap` exited (%v) saying %q |", err, strings.TrimSpace(out.String()))
	case <-time.After(*trayWait):
	}
	v := rss(cmd.Process.Pid, "VmRSS")
	cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	return fmt.Sprintf("| tray app RSS idle (%s after start, DISPLAY=%s) | %.1f MB |", *trayWait, os.Getenv("DISPLAY"), mb(v))
}

// rss reads a size field (VmRSS, VmHWM) of /proc/PID/status, in bytes.
func rss(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func mb(b int64) float64        { return float64(b) / (1 << 20) }
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	var mem string
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:"))
	}
	return fmt.Sprintf("%s, %d cores, %s memory, Linux %s, %s", model, runtime.NumCPU(), mem, strings.TrimSpace(string(kernel)), runtime.Version())
}

// fakeUpstream serves chat completions on loopback as cheaply as it can.
func fakeUpstream() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(chatReply)))
		io.WriteString(w, chatReply)
	}))
	return "http://" + ln.Addr().String() + "/v1", nil
}

// fillLedger writes n settled requests over the year before now (a
// hundredth of them today) and a token for every thousand, straight into
// SQLite in one transaction, after the ledger has made its schema.
func fillLedger(path string, n int, now time.Time) error {
	db, err := ledger.Open(path)
	if err != nil {
		return err
	}
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
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
	todays := n / 100
	span := 365 * 24 * time.Hour
	for i := range n {
		var at time.Time
		if i >= n-todays {
			at = now.Add(-time.Duration(n-i) * time.Second)
		} else {
			at = now.Add(-span + time.Duration(int64(span)/int64(n)*int64(i)))
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
