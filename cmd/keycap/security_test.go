package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keycap/keycap/keystore/keystoretest"
	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/control"
	"github.com/keycap/keycap/watchdog/standin"
)

// proxyCall sends one chat request to a keycap proxy, with a chosen Host
// and headers, and returns the status, headers and OpenAI error message.
func proxyCall(tb testing.TB, method, baseURL, host, token string, header map[string]string) (int, http.Header, string) {
	tb.Helper()
	body := `{"model":"gpt-4o-mini","max_completion_tokens":5,"messages":[{"role":"user","content":"hi"}]}`
	req, err := http.NewRequest(method, baseURL+"/chat/completions", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		tb.Fatalf("%s %s (Host %q): %v", method, baseURL, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct{ Error struct{ Message string } }
	json.Unmarshal(b, &e)
	return resp.StatusCode, resp.Header, e.Error.Message
}

// noCORS reports the CORS headers a response carries, if any.
func corsHeaders(h http.Header) []string {
	var out []string
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "access-control-") {
			out = append(out, k)
		}
	}
	return out
}

// TestProxyRefusesRebindingAndBrowsers checks the proxy's front door: a Host
// that is not a loopback name (DNS rebinding) and a browser Origin are
// refused before the token is even looked at, an origin allowed in
// config.toml passes, and no response carries CORS headers.
func TestProxyRefusesRebindingAndBrowsers(t *testing.T) {
	keystoretest.Require(t)
	bin := MustBuild(t, ".", "keycap")
	up := mustUpstream(t, 0)
	c := &cli{tb: t, bin: bin, home: t.TempDir()}
	c.must(realKey+"\n", "key", "set")
	mustConfig(t, c.home, guardsOff, func(c *config.Config) { c.AllowOrigins = []string{"http://localhost:5173"} })
	s := MustServe(t, c, "--listen", "127.0.0.1:0", "--upstream", up.srv.URL+"/v1")
	tok := strings.TrimSpace(c.must("", "token", "--label", "security"))
	_, port, _ := strings.Cut(s.listen(), ":")

	for _, host := range []string{"evil.example", "evil.example:" + port, "127.0.0.1.nip.io:" + port, "localhost.evil.example:" + port,
		"192.168.1.10:" + port, "0.0.0.0:" + port, "[::ffff:8.8.8.8]:" + port} {
		status, h, msg := proxyCall(t, http.MethodPost, s.url, host, tok, nil)
		if status != http.StatusForbidden || !strings.Contains(msg, "keycap: refused a request for host") {
			t.Errorf("Host %q: %d %q, want 403 refused", host, status, msg)
		}
		if cors := corsHeaders(h); len(cors) > 0 {
			t.Errorf("Host %q: CORS headers %v", host, cors)
		}
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST:" + port, "localhost.:" + port} {
		if status, _, msg := proxyCall(t, http.MethodPost, s.url, host, tok, nil); status != http.StatusOK {
			t.Errorf("Host %q: %d %q, want 200", host, status, msg)
		}
	}

	for _, origin := range []string{"https://evil.example", "null", "http://localhost:3000", "http://127.0.0.1:" + port} {
		for _, method := range []string{http.MethodPost, http.MethodOptions} {
			status, h, msg := proxyCall(t, method, s.url, "", tok, map[string]string{"Origin": origin,
				"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"})
			if status != http.StatusForbidden || !strings.Contains(msg, "refused a request from the web page at "+origin) {
				t.Errorf("%s with Origin %q: %d %q, want 403 refused", method, origin, status, msg)
			}
			if cors := corsHeaders(h); len(cors) > 0 {
				t.Errorf("%s with Origin %q: CORS headers %v", method, origin, cors)
			}
		}
	}
	if status, h, msg := proxyCall(t, http.MethodPost, s.url, "", tok, map[string]string{"Origin": "http://localhost:5173"}); status != http.StatusOK {
		t.Errorf("the allowed origin: %d %q, want 200", status, msg)
	} else if cors := corsHeaders(h); len(cors) > 0 {
		t.Logf("the allowed origin gets CORS headers %v", cors)
	}
	if n := len(up.api.Requests()); n != 5 {
		t.Errorf("the upstream saw %d requests, want the 4 loopback ones and the allowed origin's", n)
	}
}

// TestControlSocketIsTheUsersOnly checks the control socket is 0600 in a
// 0700 directory, and that even with its permissions opened up, another
// user's connection is dropped (SO_PEERCRED).
func TestControlSocketIsTheUsersOnly(t *testing.T) {
	keystoretest.Require(t)
	bin := MustBuild(t, ".", "keycap")
	up := mustUpstream(t, 0)
	// A home another user could reach once we open it up: not under
	// t.TempDir, whose parents are private.
	home, err := os.MkdirTemp("", "keycap-sock-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	c := &cli{tb: t, bin: bin, home: home}
	MustServe(t, c, "--listen", "127.0.0.1:0", "--upstream", up.srv.URL+"/v1")
	sock := filepath.Join(home, control.SocketName)
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket mode %v, want a 0600 socket", fi.Mode())
	}
	if di, _ := os.Stat(home); di.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode %v, want 0700", di.Mode())
	}

	if os.Getuid() != 0 {
		t.Skip("checking that another user is refused needs root, to run curl as nobody")
	}
	// Open the door as far as file permissions go, so that only the peer
	// check stands between another user and the engine, and put a keycap
	// binary where that user can run it.
	own := filepath.Join(home, "keycap-copy")
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(own, b, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(home, 0o711)
	os.Chmod(sock, 0o666)
	defer os.Chmod(home, 0o700)
	status := func(uid uint32) (string, error) {
		cmd := exec.Command(own, "status")
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/", "KEYCAP_HOME=" + home}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		cmd.Dir = "/"
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := status(0); err != nil || !strings.Contains(out, "keycap is running") {
		t.Fatalf("the owner cannot use the control socket: %v %s", err, out)
	}
	out, err := status(65534)
	if err == nil || strings.Contains(out, "keycap is running") {
		t.Errorf("another user (nobody) got an answer from the control socket: %s", out)
	} else {
		t.Logf("nobody: %v: %s", err, strings.TrimSpace(out))
	}
}

// TestTokenGuessingIsLimitedAndLogged sends bad tokens until keycap stops
// looking at tokens for a minute: then even a good one is refused, and
// the log says why.
func TestTokenGuessingIsLimitedAndLogged(t *testing.T) {
	keystoretest.Require(t)
	bin := MustBuild(t, ".", "keycap")
	up := mustUpstream(t, 0)
	c := &cli{tb: t, bin: bin, home: t.TempDir()}
	c.must(realKey+"\n", "key", "set")
	mustConfig(t, c.home, guardsOff)
	s := MustServe(t, c, "--debug", "--listen", "127.0.0.1:0", "--upstream", up.srv.URL+"/v1")
	tok := strings.TrimSpace(c.must("", "token", "--label", "good"))
	if status, _, msg := proxyCall(t, http.MethodPost, s.url, "", tok, nil); status != http.StatusOK {
		t.Fatalf("a good token before guessing: %d %s", status, msg)
	}
	var last string
	guesses := 0
	for ; guesses < 200; guesses++ {
		guess := fmt.Sprintf("kc-guess%040d", guesses)
		status, h, msg := proxyCall(t, http.MethodPost, s.url, "", guess, nil)
		if status != http.StatusUnauthorized || h.Get("X-Should-Retry") != "false" {
			t.Fatalf("guess %d: %d %q (x-should-retry %q), want 401 not to be retried", guesses, status, msg, h.Get("X-Should-Retry"))
		}
		last = msg
		if strings.Contains(msg, "too many requests with bad tokens") {
			break
		}
	}
	if guesses > 40 {
		t.Errorf("%d bad tokens in a row were looked at before keycap stopped", guesses)
	}
	t.Logf("after %d guesses: %s", guesses, last)
	status, _, msg := proxyCall(t, http.MethodPost, s.url, "", tok, nil)
	if status != http.StatusUnauthorized || !strings.Contains(msg, "too many requests with bad tokens") {
		t.Errorf("a good token during the lock-out: %d %q, want refused", status, msg)
	}
	if !strings.Contains(s.stderr.String(), "token guessing") {
		t.Errorf("the log does not mention the guessing:\n%s", s.stderr.String())
	}
	if n := len(up.api.Requests()); n != 1 {
		t.Errorf("the upstream saw %d requests, want 1", n)
	}
}

// TestKeyNeverLeavesTheKeychain runs a whole session — key set, tokens,
// scripts, streams, an upstream failure, reports, a kill -9 mid-request
// and a restart — with debug logging on, then searches the data
// directory, the logs, the config, every CLI output and the processes'
// command lines and environments for the key.
func TestKeyNeverLeavesTheKeychain(t *testing.T) {
	keystoretest.Require(t)
	bin := MustBuild(t, ".", "keycap")
	client := MustBuild(t, "./testdata/client", "client")
	up := mustUpstream(t, 50*time.Millisecond)
	c := &cli{tb: t, bin: bin, home: t.TempDir()}
	var logs bytes.Buffer
	procs := map[string][]byte{}
	snapshotProc := func(name string, pid int) {
		for _, f := range []string{"cmdline", "environ"} {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			procs[fmt.Sprintf("%s /proc/%d/%s", name, pid, f)] = b
		}
	}

	// The key whole, its secret part, and its tail.
	needles := [][]byte{[]byte(realKey), []byte(realKey[8:]), []byte(realKey[len(realKey)-24:])}
	found := func(where string, b []byte) {
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("the key is in %s", where)
				return
			}
		}
	}
	files := 0
	searchHome := func(when string) int {
		n := 0
		filepath.WalkDir(c.home, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				b, _ := os.ReadFile(p)
				found(p+" "+when, b)
				n++
			}
			return nil
		})
		files += n
		return n
	}

	c.must(realKey+"\n", "key", "set")
	c.must("", "key", "status")
	s := MustServe(t, c, "--debug", "--listen", "127.0.0.1:0", "--upstream", up.srv.URL+"/v1")
	snapshotProc("serve", s.cmd.Process.Pid)
	c.must("", "status")
	c.must("", "cap", "20")
	e := mustEnv(t, c, "notebook")
	c.must("", "token", "--json", "--label", "json")
	c.must("", "exec", "--", client)
	// What a script run by exec sees.
	envOut := c.must("", "exec", "--label", "env", "--", "sh", "-c", "env | grep '^OPENAI_'")
	if !strings.Contains(envOut, "OPENAI_API_KEY=kc-") {
		t.Errorf("exec did not hand the script a token: %q", envOut)
	}
	for _, name := range []string{"chat_stream", "responses_stream", "speech", "image", "transcription"} {
		if l := curlCase(t, e, name); !l.OK {
			t.Errorf("%s: %s", name, l.Error)
		}
	}
	up.api.SetFault(standin.Status500)
	curlCase(t, e, "chat")
	up.api.SetFault(standin.DieMidStream)
	curlCase(t, e, "chat_stream")
	up.api.SetFault(standin.None)
	// A script that sends the real key instead of a token is refused, and
	// keycap does not repeat the key back.
	if status, _, msg := proxyCall(t, http.MethodPost, s.url, "", realKey, nil); status != http.StatusUnauthorized || strings.Contains(msg, realKey[8:]) {
		t.Errorf("the real key as a token: %d %q", status, msg)
	}
	c.must("", "log")
	c.must("", "log", "--json")
	c.must("", "events", "--json")
	c.must("", "status", "--json")

	// Kill mid-request, restart, report again.
	up.api.SetFault(standin.Hang)
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest(http.MethodPost, e.baseURL+"/audio/speech", strings.NewReader(`{"model":"tts-1","voice":"alloy","input":"Hello from a request that never ends."}`))
		req.Header.Set("Authorization", "Bearer "+e.key)
		if resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for len(up.api.Requests()) == 0 || up.api.Requests()[len(up.api.Requests())-1].Endpoint != "audio/speech" || up.api.Requests()[len(up.api.Requests())-1].Status != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the hanging request never reached the upstream")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.kill()
	<-done
	logs.WriteString(s.stderr.String())
	if n := searchHome("after kill -9"); n < 4 {
		t.Errorf("after kill -9 the data directory holds %d files; want the ledger, its WAL and shared memory, the lock", n)
	}
	up.api.SetFault(standin.None)
	s = MustServe(t, c, "--debug", "--listen", s.listen(), "--upstream", up.srv.URL+"/v1")
	snapshotProc("serve after restart", s.cmd.Process.Pid)
	if st := c.status(); st.Recovered != 1 {
		t.Errorf("after the kill: %d recovered requests, want 1", st.Recovered)
	}
	c.must("", "status")
	c.must("", "log", "-n", "100")
	c.must("", "events")
	c.must("", "revoke", "--all")
	s.stop(t)
	logs.WriteString(s.stderr.String())

	searched := searchHome("after a clean stop")
	if searched < 2 {
		t.Errorf("searched only %d files in the data directory", searched)
	}
	found("the CLI output", c.all.Bytes())
	found("serve's debug log", logs.Bytes())
	for where, b := range procs {
		found(where, b)
	}
	if !strings.Contains(logs.String(), "level=") {
		t.Errorf("serve --debug logged nothing: the search would prove little")
	}
	t.Logf("searched %d files, %d bytes of CLI output, %d bytes of logs, %d process files", files, c.all.Len(), logs.Len(), len(procs))
}

// TestWebPageCannotLockScriptsOut: a web page can make the browser send
// requests to 127.0.0.1 without an Origin (an <img>, a <script>) and
// without a token. Those are not token guesses, and must not trigger the
// lock-out that refuses every script for a minute.
func TestWebPageCannotLockScriptsOut(t *testing.T) {
	keystoretest.Require(t)
	bin := MustBuild(t, ".", "keycap")
	up := mustUpstream(t, 0)
	c := &cli{tb: t, bin: bin, home: t.TempDir()}
	c.must(realKey+"\n", "key", "set")
	mustConfig(t, c.home, guardsOff)
	s := MustServe(t, c, "--listen", "127.0.0.1:0", "--upstream", up.srv.URL+"/v1")
	tok := strings.TrimSpace(c.must("", "token", "--label", "script"))
	// What <img src="http://127.0.0.1:8744/v1/models"> sends.
	for range 100 {
		req, _ := http.NewRequest(http.MethodGet, s.url+"/models", nil)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.Header.Set("Sec-Fetch-Mode", "no-cors")
		req.Header.Set("Sec-Fetch-Dest", "image")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if status, _, msg := proxyCall(t, http.MethodPost, s.url, "", tok, nil); status != http.StatusOK {
		t.Errorf("a script after a web page's requests: %d %q, want 200", status, msg)
	}
}
