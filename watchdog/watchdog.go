// Package watchdog is keycap's engine: it holds the OpenAI key in memory,
// issues short-lived tokens, meters every request through a loopback proxy
// into a durable ledger, and refuses requests before they could take the
// day's spend past the cap. The tray app and `keycap serve` both run it.
package watchdog

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/keycap/keycap/assets"
	"github.com/keycap/keycap/watchdog/budget"
	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/control"
	"github.com/keycap/keycap/watchdog/guard"
	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/meter"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/notify"
	"github.com/keycap/keycap/watchdog/pricing"
	"github.com/keycap/keycap/watchdog/reconcile"
)

// Options configure an engine. Zero values take the real defaults.
type Options struct {
	// Home is the data directory (config.toml, ledger, control socket).
	Home string
	// Listen and Upstream override config.toml when set.
	Listen   string
	Upstream string
	// Key returns the OpenAI API key; it is called once at Open and again
	// by ReloadKey. An error means "no key yet": the engine runs, and
	// refuses requests saying so.
	Key func() (string, error)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Transport carries requests upstream (default: a tuned http.Transport).
	Transport http.RoundTripper
	// Logger receives diagnostics (default: discard). The key is never logged.
	Logger *slog.Logger
	// NoControl skips the control socket (tests that drive the engine directly).
	NoControl bool
	// AdminKey returns the OpenAI admin key that reads the organization's
	// usage and costs; it is called at every sync. An error means "no admin
	// key": reconciliation is off and Status says so.
	AdminKey func() (string, error)
	// Notifier shows desktop notifications (default: beeep, throttled to
	// one a minute per kind and script, delivered in the background).
	Notifier notify.Notifier
}

// Watchdog is a running engine. Open it, Run it, Close it.
type Watchdog struct {
	home   string
	now    func() time.Time
	log    *slog.Logger
	keyFn  func() (string, error)
	lock   *os.File
	ledger *ledger.DB
	// reconciler compares the ledger with OpenAI's usage and costs.
	reconciler *reconcile.Reconciler
	budget     *budget.Budget
	// rehearsal accounts for rehearsed requests apart from real spend,
	// under the same cap.
	rehearsal *budget.Budget
	tokens    *tokenStore
	started   time.Time
	recovred  int

	mu       sync.RWMutex
	cfg      config.Config
	meter    *meter.Meter
	upstream *url.URL
	key      string
	keyErr   error
	capHit   string // day a request was last refused for the cap, until the cap changes
	rehearse bool   // every request goes to the stand-in

	stand     *rehearsalServer
	watch     *watch
	rwatch    *watch
	notifier  *notify.Throttle
	notifyQ   *notify.Queue
	notifyErr error

	proxy     *http.Server
	proxyLn   net.Listener
	control   *http.Server
	controlLn net.Listener
	transport http.RoundTripper
	noControl bool
	subsMu    sync.Mutex
	subs      map[chan struct{}]struct{}
	otherWarn sync.Map
	badTokens *guessLimiter
	inflight  sync.WaitGroup
	closeOnce sync.Once
}

// Open prepares an engine: it takes the data directory's lock, reads
// config.toml, opens the ledger, settles reservations a crash left open,
// loads today's figures and the key, and binds the proxy's listener.
func Open(o Options) (*Watchdog, error) {
	w := &Watchdog{home: o.Home, now: o.Now, log: o.Logger, keyFn: o.Key, transport: o.Transport, noControl: o.NoControl,
		subs: map[chan struct{}]struct{}{}}
	if w.now == nil {
		w.now = time.Now
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.badTokens = newGuessLimiter(w.now)
	if w.home == "" {
		h, err := config.Home()
		if err != nil {
			return nil, err
		}
		w.home = h
	}
	if err := config.EnsureHome(w.home); err != nil {
		return nil, err
	}
	lock, err := acquireLock(filepath.Join(w.home, "keycap.lock"))
	if err != nil {
		return nil, err
	}
	w.lock = lock
	ok := false
	defer func() {
		if !ok {
			w.Close()
		}
	}()
	cfg, err := config.Load(w.configPath())
	if err != nil {
		return nil, err
	}
	if o.Listen != "" {
		cfg.Listen = o.Listen
	}
	if o.Upstream != "" {
		cfg.Upstream = o.Upstream
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := w.applyConfig(cfg); err != nil {
		return nil, err
	}
	db, err := ledger.Open(filepath.Join(w.home, "ledger.db"))
	if err != nil {
		return nil, err
	}
	w.ledger = db
	w.started = w.now()
	ctx := context.Background()
	n, total, err := db.Recover(ctx, w.started)
	if err != nil {
		return nil, err
	}
	w.recovred = n
	loc, _ := cfg.Location()
	w.budget = budget.New(cfg.Cap(), loc, w.started)
	w.rehearsal = budget.New(cfg.Cap(), loc, w.started)
	if err := w.loadDay(ctx); err != nil {
		return nil, err
	}
	if r, err := db.State(ctx, "rehearsing"); err != nil {
		return nil, err
	} else {
		w.rehearse = r == "on"
	}
	if paused, err := db.State(ctx, "paused"); err != nil {
		return nil, err
	} else if paused != "" {
		w.budget.Pause(paused)
		w.rehearsal.Pause(paused)
	}
	w.tokens = &tokenStore{db: db, now: w.now, budget: w.budget, rehearsal: w.rehearsal}
	if err := w.startGuards(cfg, o.Notifier); err != nil {
		return nil, err
	}
	w.startReconcile(cfg, o.AdminKey)
	if err := w.tokens.load(ctx); err != nil {
		return nil, err
	}
	if n > 0 {
		w.event("recovered", "", total, fmt.Sprintf("%d request(s) were in flight when keycap last stopped; counted at their estimate, %s", n, total))
	}
	w.ReloadKey()
	if err := w.listen(cfg.Listen); err != nil {
		return nil, err
	}
	ok = true
	return w, nil
}

func (w *Watchdog) configPath() string { return filepath.Join(w.home, config.FileName) }

func (w *Watchdog) startGuards(cfg config.Config, n notify.Notifier) error {
	for _, x := range []**watch{&w.watch, &w.rwatch} {
		g, err := guard.New(cfg.GuardConfig())
		if err != nil {
			return err
		}
		g.Now = w.now
		*x = &watch{guard: g, budget: w.budget, rehearse: x == &w.rwatch}
	}
	w.rwatch.budget = w.rehearsal
	now := w.now()
	w.watch.guard.Prime(w.watch.account(now))
	w.rwatch.guard.Prime(w.rwatch.account(now))
	if n == nil {
		w.notifyQ = notify.NewQueue(&notify.Beeep{AppName: "keycap", IconPNG: assets.Icon}, 64)
		n = w.notifyQ
		go w.probeNotifications(context.Background())
	}
	w.notifier = notify.NewThrottle(n, time.Minute)
	w.notifier.Now = w.now
	return nil
}

// applyConfig makes cfg the engine's configuration (prices, upstream).
func (w *Watchdog) applyConfig(cfg config.Config) error {
	table, err := pricing.Load(cfg.Prices, cfg.FallbackCard())
	if err != nil {
		return err
	}
	up, err := url.Parse(strings.TrimSuffix(cfg.Upstream, "/"))
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cfg = cfg
	w.meter = &meter.Meter{Prices: table, ConfigPath: w.configPath()}
	w.upstream = up
	return nil
}

func (w *Watchdog) loadDay(ctx context.Context) error {
	s := w.budget.Snapshot(w.now())
	t, err := w.ledger.DayTotals(ctx, s.Day)
	if err != nil {
		return err
	}
	w.budget.Load(s.Day, t.Spent, t.Requests, t.ByModel, t.ByLabel)
	r, err := w.ledger.RehearsedDayTotals(ctx, s.Day)
	if err != nil {
		return err
	}
	w.rehearsal.Load(s.Day, r.Spent, r.Requests, r.ByModel, r.ByLabel)
	return nil
}

// ReloadKey reads the API key again (after `keycap key set` or Settings).
func (w *Watchdog) ReloadKey() {
	key, err := "", errors.New("no key source")
	if w.keyFn != nil {
		key, err = w.keyFn()
	}
	w.mu.Lock()
	w.key, w.keyErr = strings.TrimSpace(key), err
	if err == nil && w.key == "" {
		w.keyErr = errors.New("empty key")
	}
	w.mu.Unlock()
	w.changed()
}

func (w *Watchdog) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another program using the port? choose another with --listen or listen in config.toml)", addr, err)
	}
	w.proxyLn = ln
	if w.transport == nil {
		w.transport = defaultTransport()
	}
	w.proxy = &http.Server{Handler: w.proxyHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(w.log.Handler(), slog.LevelDebug)}
	stand, err := startRehearsal(w.log)
	if err != nil {
		return err
	}
	w.stand = stand
	if w.noControl {
		return nil
	}
	sock := filepath.Join(w.home, control.SocketName)
	cln, err := listenControl(sock)
	if err != nil {
		return err
	}
	w.controlLn = cln
	w.control = &http.Server{Handler: w.controlHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(w.log.Handler(), slog.LevelDebug)}
	return nil
}

func defaultTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 10 * time.Minute,
		ExpectContinueTimeout: time.Second,
	}
}

// ProxyURL is the base URL scripts use as OPENAI_BASE_URL.
func (w *Watchdog) ProxyURL() string {
	return "http://" + w.proxyLn.Addr().String() + "/v1"
}

// Home returns the data directory.
func (w *Watchdog) Home() string { return w.home }

// Ledger returns the engine's ledger, for read-only views.
func (w *Watchdog) Ledger() *ledger.DB { return w.ledger }

// Config returns the configuration in force.
func (w *Watchdog) Config() config.Config {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.cfg
}

// Run serves the proxy and the control socket until ctx ends, then shuts
// down gracefully, waiting for requests in flight to settle.
func (w *Watchdog) Run(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- w.proxy.Serve(w.proxyLn) }()
	if w.control != nil {
		go func() { errc <- w.control.Serve(w.controlLn) }()
	}
	w.log.Info("keycap engine running", "proxy", w.ProxyURL(), "home", w.home)
	rctx, stopReconcile := context.WithCancel(ctx)
	defer stopReconcile()
	go w.reconciler.Run(rctx)
	flush := time.NewTicker(time.Minute)
	defer flush.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-errc:
			if !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve: %w", err)
			}
			break loop
		case <-flush.C:
			// Deliver the counts of notifications folded in the last minute.
			w.notifier.Flush()
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := w.proxy.Shutdown(sctx)
	if w.control != nil {
		w.control.Shutdown(sctx)
	}
	return err
}

// Close releases the listeners, the ledger and the lock.
func (w *Watchdog) Close() error {
	var err error
	w.closeOnce.Do(func() {
		if w.proxy != nil {
			w.proxy.Close()
		} else if w.proxyLn != nil {
			w.proxyLn.Close()
		}
		if w.control != nil {
			w.control.Close()
		} else if w.controlLn != nil {
			w.controlLn.Close()
		}
		if w.controlLn != nil {
			os.Remove(filepath.Join(w.home, control.SocketName))
		}
		if w.stand != nil {
			w.stand.close()
		}
		if w.notifyQ != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			w.notifyQ.Close(ctx)
			cancel()
		}
		if w.ledger != nil {
			err = w.ledger.Close()
		}
		if w.lock != nil {
			releaseLock(w.lock)
		}
	})
	return err
}

// Subscribe returns a channel that receives a value whenever spend, state or
// settings change (coalesced: a slow reader sees one signal for many
// changes), and a function to stop.
func (w *Watchdog) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.subsMu.Lock()
	w.subs[ch] = struct{}{}
	w.subsMu.Unlock()
	return ch, func() {
		w.subsMu.Lock()
		delete(w.subs, ch)
		w.subsMu.Unlock()
	}
}

func (w *Watchdog) changed() {
	w.subsMu.Lock()
	defer w.subsMu.Unlock()
	for ch := range w.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// event records an event in the ledger and tells subscribers.
func (w *Watchdog) event(kind, label string, amount money.USD, msg string) {
	now := w.now()
	e := ledger.Event{At: now, Day: budget.Day(now, w.budget.Location()), Kind: kind, Label: label, Message: msg, Amount: amount}
	if err := w.ledger.AddEvent(context.Background(), e); err != nil {
		w.log.Error("record event", "kind", kind, "err", err)
	}
	w.log.Info("event", "kind", kind, "label", label, "message", msg)
	w.changed()
}

// Status returns the engine's state.
func (w *Watchdog) Status() control.Status {
	now := w.now()
	s := w.budget.Snapshot(now)
	cfg := w.Config()
	w.mu.RLock()
	key, keyErr := w.key, w.keyErr
	w.mu.RUnlock()
	st := control.Status{
		Day: s.Day, Timezone: w.budget.Location().String(), Cap: s.Cap, Spent: s.Spent, Reserved: s.Reserved,
		Remaining: s.Remaining, Requests: s.Requests, CapReached: s.CapReached(), ByModel: s.ByModel, ByLabel: s.ByLabel,
		Paused: s.Paused != "", PauseWhy: s.Paused, KeyPresent: keyErr == nil, ProxyURL: w.ProxyURL(), Upstream: cfg.Upstream,
		LiveTokens: w.tokens.count(now), PID: os.Getpid(), Home: w.home, Started: w.started, Recovered: w.recovred,
	}
	r := w.rehearsal.Snapshot(now)
	st.RehearsedSpent, st.RehearsedRequests, st.Rehearsing = r.Spent, r.Requests, w.Rehearsing()
	w.mu.RLock()
	if w.notifyErr != nil {
		st.Notifications = "off: " + w.notifyErr.Error()
	} else {
		st.Notifications = "on"
	}
	w.mu.RUnlock()
	st.Blocks = w.Blocks()
	o := w.reconciler.Snapshot()
	st.OpenAI, st.OpenAILines, st.Untracked = &o, o.Summary(w.budget.Location()), s.External
	if keyErr == nil {
		st.Key = redact(key)
	} else {
		st.KeyProblem = "no OpenAI API key: run `keycap key set` (it reads the key from stdin) or use Settings"
	}
	return st
}

func redact(key string) string {
	if len(key) < 8 {
		return "sk-…"
	}
	return "sk-…" + key[len(key)-4:]
}

// SetCap changes the daily cap at once and saves it to config.toml.
func (w *Watchdog) SetCap(c money.USD) error {
	cfg := w.Config()
	old := cfg.Cap()
	cfg.DailyCapUSD = c.Dollars()
	if err := config.Save(w.configPath(), cfg); err != nil {
		return err
	}
	w.mu.Lock()
	w.cfg, w.capHit = cfg, ""
	w.mu.Unlock()
	w.budget.SetCap(c)
	w.rehearsal.SetCap(c)
	w.event("cap_changed", "", c, fmt.Sprintf("daily cap changed from %s to %s", old, c))
	return nil
}

// UpdateConfig validates, saves and applies a new configuration: cap,
// timezone, upstream, token TTL and prices take effect at once; a new
// listen address takes effect at the next start.
func (w *Watchdog) UpdateConfig(cfg config.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := config.Save(w.configPath(), cfg); err != nil {
		return err
	}
	if err := w.applyConfig(cfg); err != nil {
		return err
	}
	w.watch.guard.SetConfig(cfg.GuardConfig())
	w.rwatch.guard.SetConfig(cfg.GuardConfig())
	w.configureReconcile(cfg)
	w.budget.SetCap(cfg.Cap())
	w.rehearsal.SetCap(cfg.Cap())
	w.mu.Lock()
	w.capHit = ""
	w.mu.Unlock()
	loc, _ := cfg.Location()
	w.rehearsal.SetLocation(loc, w.now())
	if w.budget.SetLocation(loc, w.now()) {
		if err := w.loadDay(context.Background()); err != nil {
			return err
		}
	}
	w.changed()
	return nil
}

// Pause refuses every request and every new token until Resume.
func (w *Watchdog) Pause(reason string) error {
	if reason == "" {
		reason = "user"
	}
	if err := w.ledger.SetState(context.Background(), "paused", reason); err != nil {
		return err
	}
	w.budget.Pause(reason)
	w.rehearsal.Pause(reason)
	w.event("paused", "", 0, "all requests paused ("+reason+")")
	return nil
}

// Resume lifts a pause.
func (w *Watchdog) Resume() error {
	if err := w.ledger.SetState(context.Background(), "paused", ""); err != nil {
		return err
	}
	w.budget.Resume()
	w.rehearsal.Resume()
	w.event("resumed", "", 0, "requests resumed")
	return nil
}

// Rehearsing reports whether every request goes to the stand-in.
func (w *Watchdog) Rehearsing() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.rehearse
}

// SetRehearsing sends every request (on) or only rehearsal tokens' (off)
// to the built-in stand-in for the OpenAI API. It survives restarts.
func (w *Watchdog) SetRehearsing(on bool) error {
	v := ""
	if on {
		v = "on"
	}
	if err := w.ledger.SetState(context.Background(), "rehearsing", v); err != nil {
		return err
	}
	w.mu.Lock()
	w.rehearse = on
	w.mu.Unlock()
	msg := "rehearsal mode off: requests go to the real API again"
	if on {
		msg = "rehearsal mode on: requests go to keycap's stand-in; nothing is paid"
	}
	w.event("rehearsal", "", 0, msg)
	return nil
}

func tokenHash(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

var _ io.Closer = (*Watchdog)(nil)
