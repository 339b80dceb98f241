// Package control is the language of keycap's control socket: the requests
// and answers the CLI and the tray send to a running engine, and a client
// that speaks it over the Unix socket in the data directory.
package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/keycap/keycap/watchdog/budget"
	"github.com/keycap/keycap/watchdog/guard"
	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/problem"
	"github.com/keycap/keycap/watchdog/reconcile"
)

// SocketName is the control socket's file name in the data directory.
const SocketName = "control.sock"

// Status is the engine's state at one moment.
type Status struct {
	Day        string         `json:"day"`
	Timezone   string         `json:"timezone"`
	Cap        money.USD      `json:"cap_usd"`
	Spent      money.USD      `json:"spent_usd"`
	Reserved   money.USD      `json:"reserved_usd"`
	Remaining  money.USD      `json:"remaining_usd"`
	Requests   int64          `json:"requests"`
	CapReached bool           `json:"cap_reached"`
	ByModel    []budget.Share `json:"by_model"`
	ByLabel    []budget.Share `json:"by_label"`
	Paused     bool           `json:"paused"`
	PauseWhy   string         `json:"pause_reason,omitempty"`
	KeyPresent bool           `json:"key_present"`
	Key        string         `json:"key,omitempty"`
	KeyProblem string         `json:"key_problem,omitempty"`
	ProxyURL   string         `json:"proxy_url"`
	Upstream   string         `json:"upstream"`
	LiveTokens int            `json:"live_tokens"`
	PID        int            `json:"pid"`
	Home       string         `json:"home"`
	Started    time.Time      `json:"started_at"`
	Recovered  int            `json:"recovered_reservations,omitempty"`
	// OpenAI is the comparison with OpenAI's own figures; OpenAILines says
	// it in sentences ("OpenAI reports $X today (as of HH:MM)…", or the one
	// line saying reconciliation is off and why).
	OpenAI      *reconcile.Snapshot `json:"openai,omitempty"`
	OpenAILines []string            `json:"openai_lines,omitempty"`
	// Untracked is spend outside keycap counted against today's cap
	// (count_untracked_against_cap).
	Untracked money.USD `json:"untracked_counted_usd,omitempty"`
	// Rehearsing is true while every request goes to the stand-in.
	Rehearsing bool `json:"rehearsing"`
	// RehearsedSpent is what today's rehearsed requests would have cost.
	RehearsedSpent    money.USD `json:"rehearsed_spent_usd"`
	RehearsedRequests int64     `json:"rehearsed_requests"`
	// Notifications is "on", or "off: <why>" when no notification service
	// is reachable (events are still recorded).
	Notifications string `json:"notifications"`
	// Blocks are the requests the loop guard refuses until allowed.
	Blocks []guard.Block `json:"loop_blocks"`
}

// AllowRequest lifts loop blocks matching Who (block id, fingerprint,
// token id or script), or all of them.
type AllowRequest struct {
	Who string `json:"who,omitempty"`
	All bool   `json:"all,omitempty"`
}

// AllowResponse says how many blocks were lifted.
type AllowResponse struct {
	Lifted int `json:"lifted"`
}

// Allow lifts loop blocks.
func (c *Client) Allow(ctx context.Context, r AllowRequest) (AllowResponse, error) {
	var out AllowResponse
	return out, c.do(ctx, "POST", "/allow", r, &out)
}

// TokenRequest asks for a new token.
type TokenRequest struct {
	Label  string        `json:"label"`
	TTL    time.Duration `json:"ttl"`
	Budget money.USD     `json:"budget_usd"`
	// Rehearse sends the token's requests to keycap's built-in stand-in
	// for the OpenAI API: nothing leaves the machine and nothing is paid.
	Rehearse bool `json:"rehearse,omitempty"`
}

// TokenResponse carries a new token. The token itself is shown once.
type TokenResponse struct {
	Token    string       `json:"token"`
	Info     ledger.Token `json:"info"`
	ProxyURL string       `json:"proxy_url"`
}

// CapRequest sets the daily cap.
type CapRequest struct {
	Cap money.USD `json:"cap_usd"`
}

// RevokeRequest revokes one token, or all of them.
type RevokeRequest struct {
	ID  string `json:"id,omitempty"`
	All bool   `json:"all,omitempty"`
}

// RevokeResponse says how many tokens were revoked.
type RevokeResponse struct {
	Revoked int64 `json:"revoked"`
}

// PauseRequest pauses or resumes.
type PauseRequest struct {
	Reason string `json:"reason,omitempty"`
}

// Client talks to a running engine.
type Client struct {
	Home string
	http *http.Client
}

// ErrNotRunning means no engine is listening in the data directory.
var ErrNotRunning = errors.New("keycap is not running")

// NewClient returns a client for the engine whose data directory is home.
func NewClient(home string) *Client {
	sock := filepath.Join(home, SocketName)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}
	return &Client{Home: home, http: &http.Client{Transport: tr}}
}

// callTimeout bounds a control call; a sync with OpenAI may wait out
// Retry-After and backoff, so it gets longer.
func callTimeout(path string) time.Duration {
	if path == SyncPath {
		return 3 * time.Minute
	}
	return 30 * time.Second
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout(path))
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://keycap"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if isNotRunning(err) {
			return ErrNotRunning
		}
		return fmt.Errorf("talk to keycap: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("talk to keycap: %w", err)
	}
	if resp.StatusCode >= 300 {
		var eb problem.Body
		if json.Unmarshal(b, &eb) == nil && eb.Error.Message != "" {
			return &problem.Error{Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return fmt.Errorf("keycap answered %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

func isNotRunning(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist)
}

// Status returns the engine's state.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, "GET", "/status", nil, &s)
}

// Token issues a token.
func (c *Client) Token(ctx context.Context, r TokenRequest) (TokenResponse, error) {
	var t TokenResponse
	return t, c.do(ctx, "POST", "/tokens", r, &t)
}

// SetCap sets the daily cap.
func (c *Client) SetCap(ctx context.Context, cap money.USD) (Status, error) {
	var s Status
	return s, c.do(ctx, "PUT", "/cap", CapRequest{Cap: cap}, &s)
}

// Pause refuses every request until Resume.
func (c *Client) Pause(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, "POST", "/pause", PauseRequest{Reason: "user"}, &s)
}

// Resume lifts a pause.
func (c *Client) Resume(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, "POST", "/resume", nil, &s)
}

// Revoke revokes a token by id, or every token.
func (c *Client) Revoke(ctx context.Context, r RevokeRequest) (RevokeResponse, error) {
	var out RevokeResponse
	return out, c.do(ctx, "POST", "/revoke", r, &out)
}

// Log returns the latest requests, newest first.
func (c *Client) Log(ctx context.Context, limit int) ([]ledger.Entry, error) {
	var out []ledger.Entry
	return out, c.do(ctx, "GET", "/log?limit="+url.QueryEscape(strconv.Itoa(limit)), nil, &out)
}

// TokenLog returns every request made with one token, oldest first.
func (c *Client) TokenLog(ctx context.Context, tokenID string) ([]ledger.Entry, error) {
	var out []ledger.Entry
	return out, c.do(ctx, "GET", "/log?token="+url.QueryEscape(tokenID), nil, &out)
}

// SetRehearsing turns rehearsal of every request on or off.
func (c *Client) SetRehearsing(ctx context.Context, on bool) (Status, error) {
	var s Status
	return s, c.do(ctx, "PUT", "/rehearsal", RehearsalRequest{On: on}, &s)
}

// RehearsalRequest turns rehearsal of every request on or off.
type RehearsalRequest struct {
	On bool `json:"on"`
}

// Events returns the latest events, newest first.
func (c *Client) Events(ctx context.Context, limit int) ([]ledger.Event, error) {
	var out []ledger.Event
	return out, c.do(ctx, "GET", "/events?limit="+url.QueryEscape(strconv.Itoa(limit)), nil, &out)
}

// Tokens lists live tokens.
func (c *Client) Tokens(ctx context.Context) ([]ledger.Token, error) {
	var out []ledger.Token
	return out, c.do(ctx, "GET", "/tokens", nil, &out)
}

// SyncPath is the control endpoint that syncs with OpenAI's usage and
// costs now and answers the reconcile.Snapshot.
const SyncPath = "/reconcile/sync"

// SyncOpenAI asks the engine to read OpenAI's usage and costs now. A failed
// sync is a *problem.Error with one sentence ("needs an admin key", …).
func (c *Client) SyncOpenAI(ctx context.Context) (reconcile.Snapshot, error) {
	var s reconcile.Snapshot
	return s, c.do(ctx, "POST", SyncPath, nil, &s)
}

// ReloadKey asks the engine to read the API key from the keychain again.
func (c *Client) ReloadKey(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, "POST", "/reload-key", nil, &s)
}
