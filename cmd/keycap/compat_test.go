package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keycap/keycap/keystore/keystoretest"
	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/standin"
)

// lockedBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serveProc is a running `keycap serve`.
type serveProc struct {
	cmd    *exec.Cmd
	url    string // OPENAI_BASE_URL, e.g. http://127.0.0.1:PORT/v1
	stderr *lockedBuffer
	done   chan error
}

var bannerURL = regexp.MustCompile(`keycap is serving (http://\S+/v1) `)

// MustServe starts `keycap serve` for c's data directory with extra
// arguments and waits for its banner. It is killed at the end of the test
// if still running.
func MustServe(tb testing.TB, c *cli, args ...string) *serveProc {
	tb.Helper()
	cmd := exec.Command(c.bin, append([]string{"serve"}, args...)...)
	cmd.Env = c.env()
	s := &serveProc{cmd: cmd, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	banner := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			// With --debug, log lines may come before the banner.
			if !found && bannerURL.MatchString(sc.Text()) {
				banner <- sc.Text()
				found = true
			}
			s.stderr.Write([]byte(sc.Text() + "\n"))
		}
		if !found {
			close(banner)
		}
		s.done <- cmd.Wait()
	}()
	tb.Cleanup(func() { s.kill() })
	select {
	case b, ok := <-banner:
		m := bannerURL.FindStringSubmatch(b)
		if !ok || m == nil {
			tb.Fatalf("keycap serve did not start: %q\n%s", b, s.stderr.String())
		}
		s.url = m[1]
	case <-time.After(90 * time.Second):
		tb.Fatalf("keycap serve printed no banner in 90s:\n%s", s.stderr.String())
	}
	return s
}

// listen returns the --listen argument that reuses this server's port.
func (s *serveProc) listen() string {
	return strings.TrimSuffix(strings.TrimPrefix(s.url, "http://"), "/v1")
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *serveProc) kill() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
	}
}

// stop sends SIGINT and waits for a clean exit.
func (s *serveProc) stop(tb testing.TB) {
	tb.Helper()
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-s.done:
		if err != nil {
			tb.Errorf("keycap serve exit: %v\n%s", err, s.stderr.String())
		}
	case <-time.After(60 * time.Second):
		tb.Errorf("keycap serve did not stop on SIGINT")
		s.kill()
	}
}

// upstreamFixture is the stand-in OpenAI API behind httptest.
type upstreamFixture struct {
	api *standin.Server
	srv *httptest.Server
}

func mustUpstream(tb testing.TB, latency time.Duration) *upstreamFixture {
	tb.Helper()
	api := standin.New(standin.Options{APIKey: realKey, Prices: prices(tb), Latency: latency})
	srv := httptest.NewServer(api)
	tb.Cleanup(srv.Close)
	return &upstreamFixture{api: api, srv: srv}
}

// mustConfig writes the data directory's config.toml before serve starts:
// the defaults, edited.
func mustConfig(tb testing.TB, home string, edits ...func(*config.Config)) {
	tb.Helper()
	cfg := config.Default()
	for _, e := range edits {
		e(&cfg)
	}
	if err := config.Save(filepath.Join(home, config.FileName), cfg); err != nil {
		tb.Fatal(err)
	}
}

// guardsOff turns the loop guard, the spend-rate breaker and the retry
// storm alarm off, for tests that repeat requests on purpose.
func guardsOff(c *config.Config) {
	c.Guards.LoopWarnAt, c.Guards.LoopBlockAt, c.Guards.RateFraction, c.Guards.RetryStormAt = 0, 0, 0, 0
}

// scriptEnv is what `keycap env` hands a script.
type scriptEnv struct{ key, baseURL string }

var exportLine = regexp.MustCompile(`(?m)^export (OPENAI_API_KEY|OPENAI_BASE_URL)=(\S+)$`)

func mustEnv(tb testing.TB, c *cli, label string) scriptEnv {
	tb.Helper()
	out := c.must("", "env", "--label", label, "--ttl", "1h")
	var e scriptEnv
	for _, m := range exportLine.FindAllStringSubmatch(out, -1) {
		if m[1] == "OPENAI_API_KEY" {
			e.key = m[2]
		} else {
			e.baseURL = m[2]
		}
	}
	if !strings.HasPrefix(e.key, "kc-") || e.baseURL == "" {
		tb.Fatalf("keycap env: %q", out)
	}
	return e
}

// vars is a script's whole environment: no OPENAI_* but the two from
// keycap, and nothing of the test's own.
func (e scriptEnv) vars(home string) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "OPENAI_API_KEY=" + e.key, "OPENAI_BASE_URL=" + e.baseURL}
}

// sdkLine is one line a compatibility script prints.
type sdkLine struct {
	Case     string `json:"case"`
	OK       bool   `json:"ok"`
	Detail   string `json:"detail"`
	Error    string `json:"error"`
	Status   int    `json:"status"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Attempts int    `json:"attempts"`
}

// runScript runs an SDK script and returns its lines by case.
func runScript(tb testing.TB, env []string, dir string, name string, args ...string) map[string]sdkLine {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env, cmd.Dir = env, dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		<-done
		tb.Fatalf("%s %v did not finish in 3 minutes\n%s\n%s", name, args, stdout.String(), stderr.String())
	}
	out := map[string]sdkLine{}
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var s sdkLine
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			tb.Fatalf("%s %v printed %q, not a JSON line (%v)\nstderr: %s", name, args, l, err, stderr.String())
		}
		out[s.Case] = s
	}
	return out
}

// compatCases are the requests each client makes, with the stand-in
// endpoint each reaches.
var compatCases = []struct{ name, endpoint string }{
	{"chat", "chat/completions"},
	{"chat_stream", "chat/completions"},
	{"responses", "responses"},
	{"responses_stream", "responses"},
	{"embeddings", "embeddings"},
	{"speech", "audio/speech"},
	{"image", "images/generations"},
	{"transcription", "audio/transcriptions"},
}

// capSentence is the part of keycap's cap refusal a person must see.
const capSentence = "keycap: daily cap reached"

// mustBuildModule builds the main package of the module in dir (a module
// of its own, so MustBuild cannot build it) into the test's bin directory.
func mustBuildModule(tb testing.TB, dir, name string) string {
	tb.Helper()
	out := filepath.Join(binDir, name)
	if _, err := os.Stat(out); err == nil {
		return out
	}
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build in %s: %v\n%s", dir, err, b)
	}
	return out
}

// nodeSDK returns the node binary and the script's directory, or skips
// (fails under CI) when `npm ci` has not installed the SDK.
func nodeSDK(tb testing.TB) (string, string) {
	tb.Helper()
	dir, err := filepath.Abs("testdata/node")
	if err != nil {
		tb.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json"))
	}
	if err != nil {
		msg := fmt.Sprintf("the official OpenAI Node SDK is not installed (%v): run `make test`, or `npm ci --prefix cmd/keycap/testdata/node`", err)
		if os.Getenv("CI") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return node, dir
}

// curlCase runs one request with curl, as a shell script would, and
// checks what it got.
func curlCase(tb testing.TB, e scriptEnv, name string) sdkLine {
	tb.Helper()
	dir := tb.TempDir()
	jsonBody := func(body string) []string {
		return []string{"-H", "Content-Type: application/json", "-d", body}
	}
	var path string
	var args []string
	switch name {
	case "chat":
		path, args = "chat/completions", jsonBody(`{"model":"gpt-4o-mini","max_completion_tokens":20,"messages":[{"role":"user","content":"How much is a ticket to London?"}]}`)
	case "chat_stream":
		path, args = "chat/completions", append(jsonBody(`{"model":"gpt-4o-mini","max_completion_tokens":20,"stream":true,"messages":[{"role":"user","content":"How much is a ticket to Paris?"}]}`), "-N")
	case "responses":
		path, args = "responses", jsonBody(`{"model":"gpt-4o-mini","input":"Say hello.","max_output_tokens":50}`)
	case "responses_stream":
		path, args = "responses", append(jsonBody(`{"model":"gpt-4o-mini","input":"Say hello again.","max_output_tokens":50,"stream":true}`), "-N")
	case "embeddings":
		path, args = "embeddings", jsonBody(`{"model":"text-embedding-3-small","input":"London is $799."}`)
	case "speech":
		path, args = "audio/speech", jsonBody(`{"model":"tts-1","voice":"alloy","input":"Welcome to FlightAI. A return ticket to London is $799."}`)
	case "image":
		path, args = "images/generations", jsonBody(`{"model":"dall-e-3","prompt":"London at dusk, in the style of a travel poster","size":"1024x1024","response_format":"b64_json"}`)
	case "transcription":
		wav := filepath.Join(dir, "question.wav")
		os.WriteFile(wav, wavBytes(2), 0o600)
		path, args = "audio/transcriptions", []string{"-F", "model=whisper-1", "-F", "file=@" + wav + ";type=audio/wav"}
	default:
		tb.Fatalf("no curl case %q", name)
	}
	body := filepath.Join(dir, "body")
	headers := filepath.Join(dir, "headers")
	cmd := exec.Command("curl", append([]string{"-sS", "-o", body, "-D", headers, "-w", "%{http_code}",
		"-H", "Authorization: Bearer " + e.key, e.baseURL + "/" + path}, args...)...)
	cmd.Env = e.vars(dir)
	out, err := cmd.Output()
	b, _ := os.ReadFile(body)
	h, _ := os.ReadFile(headers)
	l := sdkLine{Case: name, Attempts: 1}
	if err != nil {
		// curl's own failure, such as a body cut short (exit 18).
		l.Error = fmt.Sprintf("curl: %v: %s", err, b)
		return l
	}
	fmt.Sscan(string(out), &l.Status)
	var apiErr struct {
		Error struct{ Message, Code string }
	}
	if l.Status != 200 {
		json.Unmarshal(b, &apiErr)
		l.Error, l.Message, l.Code = string(b), apiErr.Error.Message, apiErr.Error.Code
		if !strings.Contains(strings.ToLower(string(h)), "x-should-retry: false") {
			l.Error += " (no x-should-retry: false header)"
		}
		return l
	}
	l.OK = true
	switch {
	case strings.HasSuffix(name, "_stream"):
		if !bytes.Contains(b, []byte("data: ")) {
			l.OK, l.Error = false, "not an event stream: "+string(b)
		}
		if name == "chat_stream" && bytes.Contains(b, []byte(`"choices":[]`)) {
			l.OK, l.Error = false, "the stream has a usage chunk curl did not ask for"
		}
		if name == "responses_stream" && !bytes.Contains(b, []byte("response.completed")) {
			l.OK, l.Error = false, "no response.completed event"
		}
	case name == "speech":
		if len(b) == 0 {
			l.OK, l.Error = false, "no audio"
		}
	case name == "image":
		var r struct {
			Data []struct {
				B64JSON string `json:"b64_json"`
			}
		}
		json.Unmarshal(b, &r)
		png := []byte{}
		if len(r.Data) == 1 {
			png, _ = base64.StdEncoding.DecodeString(r.Data[0].B64JSON)
		}
		if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			l.OK, l.Error = false, "not a PNG: "+string(b)
		}
	default:
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil || len(v) == 0 {
			l.OK, l.Error = false, "not a JSON object: "+string(b)
		}
	}
	l.Detail = fmt.Sprintf("%d bytes", len(b))
	return l
}

func wavBytes(seconds int) []byte {
	rate := 16000
	n := rate * 2 * seconds
	b := make([]byte, 44+n)
	copy(b, "RIFF")
	le32 := func(p []byte, v uint32) { p[0], p[1], p[2], p[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24) }
	le32(b[4:], uint32(36+n))
	copy(b[8:], "WAVEfmt ")
	le32(b[16:], 16)
	b[20], b[22] = 1, 1
	le32(b[24:], uint32(rate))
	le32(b[28:], uint32(rate*2))
	b[32], b[34] = 2, 16
	copy(b[36:], "data")
	le32(b[40:], uint32(n))
	return b
}

// mustLog returns the ledger's latest requests through `keycap log --json`.
func mustLog(tb testing.TB, c *cli) []ledger.Entry {
	tb.Helper()
	var es []ledger.Entry
	if err := json.Unmarshal([]byte(c.must("", "log", "--json", "-n", "10000")), &es); err != nil {
		tb.Fatal(err)
	}
	return es
}

// TestOfficialSDKsThroughServe drives `keycap serve` with the official Node
// SDK, openai-go and curl, each configured only by `keycap env`: every
// metered kind of request works and is charged what the stand-in billed,
// and a cap refusal reaches each as a readable error after one attempt.
func TestOfficialSDKsThroughServe(t *testing.T) {
	keystoretest.Require(t)
	bin := MustBuild(t, ".", "keycap")
	goSDK := mustBuildModule(t, "testdata/openaigo", "openaigo")
	up := mustUpstream(t, 0)
	c := &cli{tb: t, bin: bin, home: t.TempDir()}
	c.must(realKey+"\n", "key", "set")
	// The same prompts go out from three clients and again for the
	// refusals: the loop guard would step in before the cap.
	mustConfig(t, c.home, guardsOff)
	MustServe(t, c, "--listen", "127.0.0.1:0", "--upstream", up.srv.URL+"/v1")

	type client struct {
		name string
		run  func(t *testing.T, e scriptEnv, mode string) map[string]sdkLine
	}
	clients := []client{
		{"node", func(t *testing.T, e scriptEnv, mode string) map[string]sdkLine {
			node, dir := nodeSDK(t)
			return runScript(t, e.vars(t.TempDir()), dir, node, "compat.mjs", mode)
		}},
		{"openai-go", func(t *testing.T, e scriptEnv, mode string) map[string]sdkLine {
			return runScript(t, e.vars(t.TempDir()), t.TempDir(), goSDK, mode)
		}},
		{"curl", func(t *testing.T, e scriptEnv, mode string) map[string]sdkLine {
			out := map[string]sdkLine{}
			for _, cs := range compatCases {
				if mode == "all" || cs.name == "chat" || cs.name == "speech" {
					out[cs.name] = curlCase(t, e, cs.name)
				}
			}
			return out
		}},
	}

	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			before := len(up.api.Requests())
			e := mustEnv(t, c, cl.name)
			lines := cl.run(t, e, "all")
			for _, cs := range compatCases {
				l, ok := lines[cs.name]
				switch {
				case !ok:
					t.Errorf("%s: no result", cs.name)
				case !l.OK:
					t.Errorf("%s: %s (status %d, %s)", cs.name, l.Error, l.Status, l.Message)
				case l.Attempts != 1:
					t.Errorf("%s: %d attempts, want 1", cs.name, l.Attempts)
				default:
					t.Logf("%s: %s", cs.name, l.Detail)
				}
			}
			recs := up.api.Requests()[before:]
			got := map[string]int{}
			for _, r := range recs {
				got[r.Endpoint]++
				if r.Header.Get("Authorization") != "Bearer "+realKey {
					t.Errorf("%s reached the upstream without the real key", r.Endpoint)
				}
			}
			want := map[string]int{}
			for _, cs := range compatCases {
				want[cs.endpoint]++
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("upstream saw %v, want %v", got, want)
			}
		})
	}

	// Every request is in the ledger, exact, and together they cost what
	// the stand-in billed (keycap rounds each charge up to the micro-dollar).
	es := mustLog(t, c)
	exact := 0
	var spent money.USD
	for _, e := range es {
		if e.State != ledger.Settled {
			t.Errorf("request %d (%s) is %s", e.ID, e.Endpoint, e.State)
		}
		if e.Exact {
			exact++
		} else {
			t.Logf("request %d (%s %s) charged at its estimate: %s", e.ID, e.Endpoint, e.Model, e.Note)
		}
		spent += e.Cost
	}
	bill := money.FromFloat(up.api.Bill())
	if s := c.status(); s.Spent != spent || spent < bill || spent > bill+money.USD(len(es)) {
		t.Errorf("status spent %s, ledger %s over %d requests (%d exact); upstream billed %s", s.Spent, spent, len(es), exact, bill)
	}

	// The control: the upstream's own rate limit carries no
	// x-should-retry, so the SDKs retry it (twice by default). This shows
	// the scripts' attempt counters see retries.
	up.api.SetFault(standin.Status429)
	for _, cl := range clients[:2] {
		t.Run(cl.name+"/rate-limited", func(t *testing.T) {
			lines := cl.run(t, mustEnv(t, c, cl.name+"-rate-limited"), "refuse")
			if l := lines["chat"]; l.OK || l.Status != http.StatusTooManyRequests || l.Code != "rate_limit_exceeded" || l.Attempts < 2 {
				t.Errorf("an upstream 429 reached %s as %+v; want rate_limit_exceeded after retries", cl.name, l)
			} else {
				t.Logf("chat: %d attempts: %s", l.Attempts, l.Error)
			}
		})
	}
	up.api.SetFault(standin.None)

	// A cap refusal: tokens first (none are issued at the cap), then a
	// zero cap. Each client sees keycap's sentence once, and nothing
	// reaches the upstream or the ledger.
	envs := map[string]scriptEnv{}
	for _, cl := range clients {
		envs[cl.name] = mustEnv(t, c, cl.name+"-refused")
	}
	c.must("", "cap", "0")
	upBefore, ledgerBefore := len(up.api.Requests()), len(mustLog(t, c))
	for _, cl := range clients {
		t.Run(cl.name+"/refused", func(t *testing.T) {
			lines := cl.run(t, envs[cl.name], "refuse")
			for _, name := range []string{"chat", "speech"} {
				l, ok := lines[name]
				switch {
				case !ok:
					t.Errorf("%s: no result", name)
				case l.OK:
					t.Errorf("%s: succeeded over a zero cap: %s", name, l.Detail)
				case l.Status != http.StatusTooManyRequests || l.Code != "daily_cap_reached":
					t.Errorf("%s: status %d code %q (%s), want 429 daily_cap_reached", name, l.Status, l.Code, l.Error)
				case !strings.Contains(l.Message, capSentence) || !strings.Contains(l.Message, "keycap cap <dollars>"):
					t.Errorf("%s: the error message %q does not carry keycap's sentence", name, l.Message)
				case l.Attempts != 1:
					t.Errorf("%s: the SDK tried %d times, want once (x-should-retry: false)", name, l.Attempts)
				default:
					t.Logf("%s: %s; message: %s", name, l.Error, l.Message)
				}
			}
		})
	}
	if n := len(up.api.Requests()); n != upBefore {
		t.Errorf("%d refused requests reached the upstream", n-upBefore)
	}
	if n := len(mustLog(t, c)); n != ledgerBefore {
		t.Errorf("%d refused requests are in the ledger", n-ledgerBefore)
	}
}
