package watchdog

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"

	"github.com/keycap/keycap/watchdog/budget"
	"github.com/keycap/keycap/watchdog/guard"
	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/meter"
	"github.com/keycap/keycap/watchdog/problem"
)

// ticket follows one admitted request from its reservation to settlement.
type ticket struct {
	id    int64
	hold  budget.Hold
	plan  *meter.Plan
	token ledger.Token
	key   string
	path  string
	// rehearse sends the request to the stand-in and charges it to the
	// rehearsal account.
	rehearse bool
	acct     *budget.Budget
	once     sync.Once
}

type ticketKey struct{}

// proxyHandler is the metering proxy. One request flows top to bottom:
// security checks → token → read body → plan (price estimate) → reserve in
// memory → write the reservation → forward → meter the response as it
// streams → settle in memory and in the ledger → tell subscribers.
func (w *Watchdog) proxyHandler() http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite:        w.rewrite,
		Transport:      w.transport,
		FlushInterval:  -1,
		ModifyResponse: w.modifyResponse,
		ErrorHandler:   w.upstreamError,
		ErrorLog:       slog.NewLogLogger(w.log.Handler(), slog.LevelDebug),
	}
	return w.secure(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		t, err := w.admit(r)
		if err != nil {
			if problem.CodeOf(err) == problem.Internal || problem.CodeOf(err) == problem.LedgerUnavailable {
				w.log.Error("request refused", "err", err)
			}
			problem.Write(rw, err)
			return
		}
		w.inflight.Add(1)
		defer w.inflight.Done()
		rp.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), ticketKey{}, t)))
	}))
}

// secure refuses what a loopback API for local scripts should never see:
// a Host that is not loopback (DNS rebinding) and browser Origins, unless
// allowed in config.toml.
func (w *Watchdog) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			problem.Write(rw, problem.Errorf(problem.Forbidden, "keycap: refused a request for host %q; keycap answers only on 127.0.0.1 or localhost", r.Host))
			return
		}
		if o := r.Header.Get("Origin"); o != "" {
			if !w.originAllowed(o) {
				problem.Write(rw, problem.Errorf(problem.Forbidden, "keycap: refused a request from the web page at %s; browsers may not use keycap unless you add the origin to allow_origins in config.toml", o))
				return
			}
			// An origin the user allowed gets CORS, and its preflight an answer.
			h := rw.Header()
			h.Set("Access-Control-Allow-Origin", o)
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
				h.Set("Access-Control-Allow-Headers", r.Header.Get("Access-Control-Request-Headers"))
				h.Set("Access-Control-Max-Age", "600")
				rw.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(rw, r)
	})
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (w *Watchdog) originAllowed(o string) bool {
	for _, a := range w.Config().AllowOrigins {
		if strings.EqualFold(strings.TrimSuffix(a, "/"), o) {
			return true
		}
	}
	return false
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return strings.TrimSpace(r.Header.Get("Api-Key"))
}

// admit checks the token, prices the request and reserves its worst case.
func (w *Watchdog) admit(r *http.Request) (*ticket, error) {
	if w.badTokens.blocked() {
		return nil, problem.Errorf(problem.InvalidToken, "keycap: too many requests with bad tokens in the last minute; refusing all for a minute")
	}
	secret := bearer(r)
	tok, err := w.tokens.verify(secret)
	if err != nil {
		// Only a keycap token that matches no live token is a guess. A
		// missing token (what a web page's <img> or <script> sends), a
		// real key or an expired token is a mistake; counting those would
		// let any web page lock every script out.
		if problem.CodeOf(err) == problem.InvalidToken && strings.HasPrefix(secret, TokenPrefix) && w.badTokens.fail() {
			w.log.Warn("token guessing: too many unknown tokens in a minute", "remote", r.RemoteAddr)
			w.event("token_guessing", "", 0, "more than 30 unknown tokens in a minute: keycap refuses every request for a minute")
		}
		return nil, err
	}
	rel, ok := strings.CutPrefix(r.URL.Path, "/v1")
	if !ok || (rel != "" && rel[0] != '/') {
		return nil, problem.Errorf(problem.NotFound, "keycap: unknown path %q; set OPENAI_BASE_URL to %s", r.URL.Path, w.ProxyURL())
	}
	w.mu.RLock()
	key, keyErr, m := w.key, w.keyErr, w.meter
	w.mu.RUnlock()
	rehearse := tok.Rehearse || w.Rehearsing()
	if keyErr != nil && !rehearse {
		return nil, problem.Errorf(problem.NoKey, "keycap has no OpenAI API key yet: run `keycap key set` (it reads the key from stdin) or enter it in Settings")
	}
	acct := w.budget
	if rehearse {
		acct, key = w.rehearsal, w.stand.key
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, meter.MaxBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, problem.Errorf(problem.BodyTooLarge, "keycap: the request body is larger than %d MB", meter.MaxBody>>20)
		}
		return nil, problem.Errorf(problem.Invalid, "keycap: could not read the request body")
	}
	ep := meter.Classify(r.Method, rel)
	plan, err := m.Plan(ep, r.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, err
	}
	if ep == meter.Other {
		if _, warned := w.otherWarn.LoadOrStore(r.Method+" "+rel, true); !warned && r.Method != http.MethodGet {
			w.log.Warn("endpoint not metered: passed through at $0 unless it reports usage", "method", r.Method, "path", rel)
		}
	}
	x := w.watchFor(rehearse)
	label := tok.Label
	fs, err := x.guard.Check(guard.Request{TokenID: tok.ID, Label: label, Endpoint: string(ep), Model: plan.Model, Fingerprint: plan.Fingerprint, Estimate: plan.Estimate})
	w.report(x, fs...)
	if err != nil {
		return nil, err
	}
	now := w.now()
	hold, err := acct.Reserve(now, tok.ID, plan.Estimate)
	if err != nil {
		if !rehearse {
			w.refused(err)
		}
		w.report(x, x.guard.Denied(label, err, x.account(now))...)
		return nil, err
	}
	id, err := w.ledger.Reserve(r.Context(), ledger.Entry{
		Start: now, Day: hold.Day, TokenID: tok.ID, Label: tok.Label, Method: r.Method, Path: rel,
		Endpoint: string(ep), Model: plan.Model, Card: plan.Card, Stream: plan.Stream, Estimate: plan.Estimate,
		Exact: plan.Exact, Units: plan.Units, Fingerprint: plan.Fingerprint, Note: plan.Note, Rehearsed: rehearse,
	})
	if err != nil {
		// Fail closed: spend we cannot record is spend we do not allow.
		acct.Release(hold)
		return nil, &problem.Error{Code: problem.LedgerUnavailable, Err: err,
			Message: "keycap: the request was refused because keycap cannot write its ledger (disk full or read-only?); see `keycap serve --debug`"}
	}
	w.changed()
	return &ticket{id: id, hold: hold, plan: plan, token: tok, key: key, path: rel, rehearse: rehearse, acct: acct}, nil
}

// refused notes the day's cap as reached once a request is refused for it,
// so no new tokens are issued until the cap changes.
func (w *Watchdog) refused(err error) {
	if problem.CodeOf(err) != problem.DailyCapReached {
		return
	}
	s := w.budget.Snapshot(w.now())
	w.mu.Lock()
	w.capHit = s.Day
	w.mu.Unlock()
}

func (w *Watchdog) rewrite(pr *httputil.ProxyRequest) {
	t := pr.In.Context().Value(ticketKey{}).(*ticket)
	w.mu.RLock()
	up := w.upstream
	w.mu.RUnlock()
	if t.rehearse {
		up = w.stand.url
	}
	pr.Out.URL.Path, pr.Out.URL.RawPath = t.path, ""
	pr.SetURL(up)
	pr.Out.Header.Set("Authorization", "Bearer "+t.key)
	pr.Out.Header.Del("Api-Key")
	// Let the transport negotiate compression, so the meter reads plain
	// bytes; the loopback leg to the client is not compressed.
	pr.Out.Header.Del("Accept-Encoding")
	pr.Out.Body = io.NopCloser(bytes.NewReader(t.plan.Body))
	pr.Out.ContentLength = int64(len(t.plan.Body))
	pr.Out.Header.Set("Content-Length", strconv.Itoa(len(t.plan.Body)))
	pr.Out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(t.plan.Body)), nil }
}

func (w *Watchdog) modifyResponse(resp *http.Response) error {
	t := resp.Request.Context().Value(ticketKey{}).(*ticket)
	sse := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	if sse && t.plan.StripUsage {
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
	}
	// CORS is keycap's to answer, never upstream's.
	for k := range resp.Header {
		if strings.HasPrefix(strings.ToLower(k), "access-control-") {
			resp.Header.Del(k)
		}
	}
	status, reqID := resp.StatusCode, resp.Header.Get("X-Request-Id")
	resp.Body = t.plan.WrapBody(resp.Body, sse, func(r meter.Reading, complete bool) {
		w.settle(t, status, true, complete, r, reqID)
	})
	return nil
}

// upstreamError answers when the upstream round trip failed.
func (w *Watchdog) upstreamError(rw http.ResponseWriter, r *http.Request, err error) {
	t, _ := r.Context().Value(ticketKey{}).(*ticket)
	var op *net.OpError
	neverSent := errors.As(err, &op) && op.Op == "dial"
	if t != nil {
		w.settle(t, 0, !neverSent, false, meter.Reading{}, "")
	}
	if errors.Is(err, context.Canceled) {
		return // the client went away; nobody to answer
	}
	w.log.Warn("upstream request failed", "err", err)
	msg := "keycap: could not reach the OpenAI API"
	if !neverSent {
		msg = "keycap: the OpenAI API did not answer in full; the request was counted at its estimate in case it was billed"
	}
	problem.Write(rw, problem.Errorf(problem.Upstream, "%s (%s)", msg, problem.NetReason(err)))
}

// settle prices what the request really cost, once, and records it.
func (w *Watchdog) settle(t *ticket, status int, sent, complete bool, r meter.Reading, reqID string) {
	t.once.Do(func() {
		s := t.plan.Settle(status, sent, complete, r)
		if t.plan.Endpoint == meter.Other && r.Found && status < 400 {
			w.mu.RLock()
			m := w.meter
			w.mu.RUnlock()
			if c, ok := m.PriceUsage(r.Model, r.Units); ok && c > 0 {
				s.Cost, s.Units, s.Note = c, r.Units, "endpoint not metered, but it reported usage: charged for it"
			}
		}
		t.acct.Settle(t.hold, s.Cost, t.plan.Model, t.token.Label)
		x := w.watchFor(t.rehearse)
		fs := x.guard.Spent(t.token.Label, s.Cost, x.account(w.now()))
		if sent {
			fs = append(fs, x.guard.Upstream(t.token.Label, status)...)
		}
		w.report(x, fs...)
		if err := w.ledger.Settle(context.Background(), t.id, w.now(), s, status, reqID); err != nil {
			// The row stays reserved and is counted at its estimate at the
			// next start: never less than was spent.
			w.log.Error("settle request", "id", t.id, "err", err)
		}
		if !s.Exact {
			w.log.Debug("charged at estimate", "id", t.id, "cost", s.Cost.String(), "why", s.Note)
		}
		w.changed()
	})
}
