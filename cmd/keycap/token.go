package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/keycap/keycap/watchdog/control"
	"github.com/keycap/keycap/watchdog/money"
)

// tokenFlags are the flags of token, env and exec.
type tokenFlags struct {
	ttl      time.Duration
	label    string
	budget   string
	rehearse bool
}

func (t *tokenFlags) request(defaultLabel string) (control.TokenRequest, error) {
	r := control.TokenRequest{Label: t.label, TTL: t.ttl, Rehearse: t.rehearse}
	if r.Label == "" {
		r.Label = defaultLabel
	}
	if t.budget != "" {
		b, err := money.Parse(t.budget)
		if err != nil {
			return r, fmt.Errorf("--budget: %w", err)
		}
		r.Budget = b
	}
	if t.ttl < 0 || t.ttl > 24*time.Hour {
		return r, errors.New("--ttl must be between 1s and 24h")
	}
	return r, nil
}

func addTokenFlags(fs interface {
	DurationVar(*time.Duration, string, time.Duration, string)
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
}, t *tokenFlags) {
	fs.BoolVar(&t.rehearse, "rehearse", false, "send requests to keycap's built-in stand-in for OpenAI: free, nothing leaves the machine, priced as if real")
	fs.DurationVar(&t.ttl, "ttl", 0, "how long the token lives (default from config.toml, 1h; at most 24h)")
	fs.StringVar(&t.label, "label", "", "name of the script, shown in status and the tray")
	fs.StringVar(&t.budget, "budget", "", "most this token may spend, in dollars (default: only the daily cap)")
}

func runToken(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "token", "[--ttl 1h] [--label NAME] [--budget DOLLARS] [--json]")
	var tf tokenFlags
	addTokenFlags(fs, &tf)
	asJSON := fs.Bool("json", false, "print the token and its details as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := tooMany(e, fs, 0); err != nil {
		return err
	}
	req, err := tf.request("terminal")
	if err != nil {
		return err
	}
	t, err := e.client().Token(ctx, req)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e, t)
	}
	fmt.Fprintln(e.stdout, t.Token)
	return nil
}

func runEnv(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "env", "[--ttl 1h] [--label NAME] [--budget DOLLARS]")
	var tf tokenFlags
	addTokenFlags(fs, &tf)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := tooMany(e, fs, 0); err != nil {
		return err
	}
	req, err := tf.request("shell")
	if err != nil {
		return err
	}
	t, err := e.client().Token(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "export OPENAI_API_KEY=%s\nexport OPENAI_BASE_URL=%s\n", t.Token, t.ProxyURL)
	fmt.Fprintf(e.stdout, "# keycap token %s for %q, valid until %s\n", t.Info.ID, t.Info.Label, t.Info.Expires.Local().Format(time.Kitchen))
	return nil
}

func runExec(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "exec", "[--ttl 1h] [--label NAME] [--budget DOLLARS] -- CMD [ARGS…]")
	var tf tokenFlags
	addTokenFlags(fs, &tf)
	if err := parse(fs, args); err != nil {
		return err
	}
	cmdArgs := fs.Args()
	if len(cmdArgs) > 0 && cmdArgs[0] == "--" {
		cmdArgs = cmdArgs[1:]
	}
	if len(cmdArgs) == 0 {
		fmt.Fprintln(e.stderr, "keycap exec: say which command to run, e.g. `keycap exec -- python app.py`")
		return errUsage
	}
	label := filepath.Base(cmdArgs[0])
	if len(cmdArgs) > 1 && isInterpreter(label) {
		label = filepath.Base(cmdArgs[1])
	}
	req, err := tf.request(label)
	if err != nil {
		return err
	}
	c := e.client()
	t, err := c.Token(ctx, req)
	if err != nil {
		return err
	}
	// The token dies with the command.
	defer c.Revoke(context.WithoutCancel(ctx), control.RevokeRequest{ID: t.Info.ID})
	cmd := exec.Command(cmdArgs[0], cmdArgs[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, e.stdout, e.stderr
	cmd.Env = append(withoutVars(os.Environ(), "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"),
		"OPENAI_API_KEY="+t.Token, "OPENAI_BASE_URL="+t.ProxyURL, "OPENAI_API_BASE="+t.ProxyURL)
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot run %s: %w", cmdArgs[0], unwrapExec(err))
	}
	if tf.rehearse {
		defer func() {
			if err := printRehearsal(context.WithoutCancel(ctx), e, t.Info.ID, t.Info.Label, started); err != nil {
				fmt.Fprintln(e.stderr, sentence(err))
			}
		}()
	}
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sig:
			cmd.Process.Signal(s)
		case err := <-done:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					return exitCode(128 + int(ws.Signal()))
				}
				return exitCode(ee.ExitCode())
			}
			return err
		}
	}
}

func isInterpreter(name string) bool {
	for _, p := range []string{"python", "node", "ruby", "bash", "sh", "uv", "deno", "bun", "go"} {
		if name == p || strings.HasPrefix(name, p+"3") || strings.HasPrefix(name, p+"2") {
			return true
		}
	}
	return false
}

func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}

func withoutVars(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			if k == n {
				drop = true
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

func printJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
