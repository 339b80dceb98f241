package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keycap/keycap/keystore/keystoretest"
	"github.com/keycap/keycap/watchdog/control"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/standin"
)

const realKey = "sk-proj-" + "E2EREALKEYabcdefghijklmnopqrstuvwxyz0123456789k3y9"

var binDir string

// pinGoEnv keeps the go command's caches where they are: the private
// Secret Service gives the tests a new HOME, and builds from an empty cache
// would recompile Fyne's C code and download modules on every run.
func pinGoEnv() {
	names := []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOENV"}
	out, err := exec.Command("go", append([]string{"env"}, names...)...).Output()
	if err != nil {
		return
	}
	vals := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, k := range names {
		if i < len(vals) && vals[i] != "" && os.Getenv(k) == "" {
			os.Setenv(k, vals[i])
		}
	}
}

func TestMain(m *testing.M) {
	pinGoEnv()
	dir, err := os.MkdirTemp("", "keycap-e2e-*")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := keystoretest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// MustBuild builds a package into the test's bin directory once.
func MustBuild(tb testing.TB, pkg, name string) string {
	tb.Helper()
	out := filepath.Join(binDir, name)
	if _, err := os.Stat(out); err == nil {
		return out
	}
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// cli runs keycap commands against one data directory and keeps all they
// print, to search it for the key at the end.
type cli struct {
	tb   testing.TB
	bin  string
	home string
	all  bytes.Buffer
}

func (c *cli) env() []string {
	return append(os.Environ(), "KEYCAP_HOME="+c.home)
}

func (c *cli) run(stdin string, args ...string) (string, int) {
	c.tb.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env()
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	c.all.Write(out.Bytes())
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.tb.Fatalf("keycap %v: %v", args, err)
	}
	return out.String(), code
}

func (c *cli) must(stdin string, args ...string) string {
	c.tb.Helper()
	out, code := c.run(stdin, args...)
	if code != 0 {
		c.tb.Fatalf("keycap %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func (c *cli) status() control.Status {
	c.tb.Helper()
	var s control.Status
	if err := json.Unmarshal([]byte(c.must("", "status", "--json")), &s); err != nil {
		c.tb.Fatal(err)
	}
	return s
}

// prices loads the raw LiteLLM table (keycap's embedded copy) for the
// stand-in's bill, which is computed apart from keycap's own pricing.
func prices(tb testing.TB) map[string]map[string]any {
	tb.Helper()
	b, err := os.ReadFile("../../watchdog/pricing/litellm/model_prices.json")
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

func TestEndToEndServeAndExec(t *testing.T) {
	keystoretest.Require(t)
	bin := MustBuild(t, ".", "keycap")
	client := MustBuild(t, "./testdata/client", "client")
	up := standin.New(standin.Options{APIKey: realKey, Prices: prices(t)})
	upstream := httptest.NewServer(up)
	defer upstream.Close()
	c := &cli{tb: t, bin: bin, home: t.TempDir()}

	if out, code := c.run("", "status"); code != 1 || !strings.Contains(out, "keycap is not running: start it with `keycap serve`") {
		t.Errorf("status before serve: %d %q", code, out)
	}
	if out, code := c.run("", "key", "set", realKey); code != 1 || !strings.Contains(out, "never from the command line") {
		t.Errorf("key on argv: %d %q", code, out)
	}
	if out := c.must(realKey+"\n", "key", "set"); !strings.Contains(out, "Stored sk-…k3y9 in the system keychain") {
		t.Errorf("key set: %q", out)
	}
	if out := c.must("", "key", "status"); !strings.Contains(out, "API key sk-…k3y9, stored in the system keychain on ") {
		t.Errorf("key status: %q", out)
	}

	serve := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--upstream", upstream.URL+"/v1")
	serve.Env = c.env()
	stderr, _ := serve.StderrPipe()
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer serve.Process.Kill()
	banner := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var first string
		for sc.Scan() {
			if first == "" {
				first = sc.Text()
				banner <- first
			}
			c.all.WriteString(sc.Text() + "\n")
		}
	}()
	select {
	case b := <-banner:
		if !strings.Contains(b, "keycap is serving http://127.0.0.1:") {
			t.Fatalf("serve banner: %q", b)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("keycap serve did not start")
	}
	if out, code := c.run("", "serve", "--listen", "127.0.0.1:0"); code != 1 || !strings.Contains(out, "already running") {
		t.Errorf("second serve: %d %q", code, out)
	}

	out, code := c.run("", "exec", "--", client, "3")
	if code != 3 || !strings.Contains(out, "speech") {
		t.Fatalf("exec: exit %d (want the client's 3)\n%s", code, out)
	}
	s := c.status()
	if want := money.FromFloat(up.Bill()); s.Spent < want || s.Spent > want+2 || s.Requests != 2 {
		t.Errorf("status spent %d over %d requests; upstream billed %d", s.Spent, s.Requests, want)
	}
	if len(s.ByLabel) != 1 || s.ByLabel[0].Name != "client" {
		t.Errorf("by label = %+v, want the command's name", s.ByLabel)
	}
	if s.LiveTokens != 0 {
		t.Errorf("exec's token outlived the command: %d live", s.LiveTokens)
	}
	if out := c.must("", "log"); !strings.Contains(out, "audio.speech") || !strings.Contains(out, "tts-1") {
		t.Errorf("log: %q", out)
	}
	envOut := c.must("", "env", "--label", "notebook", "--ttl", "10m")
	if !strings.Contains(envOut, "export OPENAI_API_KEY=kc-") || !strings.Contains(envOut, "export OPENAI_BASE_URL=http://127.0.0.1:") {
		t.Errorf("env: %q", envOut)
	}
	tok := strings.TrimSpace(c.must("", "token", "--label", "x", "--budget", "0.10"))
	if !strings.HasPrefix(tok, "kc-") || len(tok) < 40 {
		t.Errorf("token: %q", tok)
	}

	c.must("", "cap", "0.001") // above today's spend, below it plus one more speech request
	out, code = c.run("", "exec", "--label", "loop", "--", client)
	if code != 7 || !strings.Contains(out, "refused: 429 daily_cap_reached: keycap: daily cap reached") {
		t.Errorf("exec over the cap: %d %q", code, out)
	}
	if out, code := c.run("", "token"); code != 1 || !strings.Contains(out, "no new tokens are issued") {
		t.Errorf("token over the cap: %d %q", code, out)
	}
	c.must("", "cap", "5")
	c.must("", "pause")
	if s := c.status(); !s.Paused {
		t.Error("pause did not pause")
	}
	out, code = c.run("", "exec", "--", client)
	if code != 1 || !strings.Contains(out, "keycap is paused") {
		t.Errorf("exec while paused: %d %q", code, out)
	}
	c.must("", "resume")
	if out := c.must("", "revoke", "--all"); !strings.Contains(out, "Revoked 2 token(s)") {
		t.Errorf("revoke: %q", out)
	}
	if out := c.must("", "events"); !strings.Contains(out, "cap_reached") || !strings.Contains(out, "paused") {
		t.Errorf("events: %q", out)
	}
	c.must("", "status")
	if out, code := c.run("", "frobnicate"); code != 2 || !strings.Contains(out, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, out)
	}

	serve.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- serve.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("serve did not stop on SIGINT")
	}

	secret := realKey[8:]
	if strings.Contains(c.all.String(), secret) {
		t.Errorf("the key appears in CLI output:\n%s", c.all.String())
	}
	filepath.Walk(c.home, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secret)) {
				t.Errorf("the key is in %s", p)
			}
		}
		return nil
	})
	if out := c.must("", "key", "rm"); !strings.Contains(out, "Removed") {
		t.Errorf("key rm: %q", out)
	}
}

func TestImportEnvMovesTheKey(t *testing.T) {
	keystoretest.Require(t)
	bin := MustBuild(t, ".", "keycap")
	dir := t.TempDir()
	env := filepath.Join(dir, ".env")
	os.WriteFile(env, []byte("# course settings\nOPENAI_API_KEY="+realKey+"\nANTHROPIC_MODEL=claude\n"), 0o600)
	c := &cli{tb: t, bin: bin, home: t.TempDir()}
	out := c.must("", "key", "import-env", env)
	if !strings.Contains(out, "Moved sk-…k3y9 from") {
		t.Errorf("import-env: %q", out)
	}
	b, _ := os.ReadFile(env)
	if got, want := string(b), "# course settings\nANTHROPIC_MODEL=claude\n"; got != want {
		t.Errorf(".env after import = %q, want %q", got, want)
	}
	if _, err := os.Stat(env + ".bak"); !os.IsNotExist(err) {
		t.Errorf("a .bak was kept without --backup")
	}
	if out := c.must("", "key", "status"); !strings.Contains(out, "sk-…k3y9") {
		t.Errorf("key status after import: %q", out)
	}
	if strings.Contains(c.all.String(), realKey[8:]) {
		t.Errorf("key in output: %s", c.all.String())
	}
}
