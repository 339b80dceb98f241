package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/keycap/keycap/watchdog/control"
	"github.com/keycap/keycap/watchdog/problem"
	"github.com/keycap/keycap/watchdog/reconcile"
)

// runSync asks the running engine to read OpenAI's usage and costs now,
// rather than at its next interval, and prints the comparison.
func runSync(ctx context.Context, e *env, args []string) error {
	fl := flags(e, "sync", "[--json]")
	asJSON := fl.Bool("json", false, "print as JSON")
	if err := parse(fl, args); err != nil {
		return err
	}
	if err := tooMany(e, fl, 0); err != nil {
		return err
	}
	s, err := requestSync(ctx, e.home)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e, s)
	}
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil || s.Timezone == "" {
		loc = time.Local
	}
	for _, line := range s.Summary(loc) {
		fmt.Fprintln(e.stdout, line)
	}
	return nil
}

// syncPath is the control socket endpoint that syncs with OpenAI now and
// answers the reconcile.Snapshot, or the OpenAI-shaped error of a failed
// sync (one sentence: "needs an admin key", "rate limited"…).
const syncPath = "/reconcile/sync"

// requestSync sends POST /reconcile/sync over the control socket.
func requestSync(ctx context.Context, home string) (reconcile.Snapshot, error) {
	var s reconcile.Snapshot
	sock := filepath.Join(home, control.SocketName)
	hc := &http.Client{Timeout: 3 * time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://keycap"+syncPath, nil)
	if err != nil {
		return s, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist) {
			return s, control.ErrNotRunning
		}
		return s, fmt.Errorf("talk to keycap: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return s, fmt.Errorf("talk to keycap: %w", err)
	}
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
		var eb problem.Body
		if json.Unmarshal(b, &eb) != nil || eb.Error.Message == "" {
			return s, errors.New("the running keycap cannot sync with OpenAI yet: restart it (`keycap serve`, or quit and start the tray app)")
		}
	}
	if resp.StatusCode >= 300 {
		var eb problem.Body
		if json.Unmarshal(b, &eb) == nil && eb.Error.Message != "" {
			return s, &problem.Error{Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return s, fmt.Errorf("keycap answered %s", resp.Status)
	}
	return s, json.Unmarshal(b, &s)
}
