// Package guard watches the stream of requests for the patterns that turn a
// small bug into a large bill: the same request sent again and again (a
// loop), spending that is too fast for the daily cap (a runaway), upstream
// errors that a script keeps retrying (a retry storm), and the crossing of
// fractions of the cap. It decides; it does not act. Each method returns
// Findings for the caller to record as events, show and notify, and the
// loop guard returns the refusal for the caller to send.
//
// A Guard is safe for concurrent use, keeps bounded memory however many
// requests pass, and reads time only through its Now field.
package guard

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/keycap/keycap/watchdog/money"
)

// LoopBlocked is the problem code of a request refused as part of a loop;
// the proxy answers it with HTTP 429.
const LoopBlocked = "loop_blocked"

// SpendRate is the pause reason to give Budget.Pause when a Finding asks
// for a pause.
const SpendRate = "spend_rate"

// Kinds of Finding, also used as ledger event kinds.
const (
	KindThreshold   = "threshold"
	KindLoopWarning = "loop_warning"
	KindLoopBlocked = "loop_blocked"
	KindSpendRate   = "spend_rate"
	KindRetryStorm  = "retry_storm"
	KindTokenDenied = "token_denied"
)

// Bounds on what a Guard remembers. They are far above what one person's
// scripts produce; past them the oldest state is dropped.
const (
	maxLoops   = 4096
	maxStorms  = 1024
	maxDenied  = 1024
	maxCount   = 1000
	maxWindow  = 24 * time.Hour
	rateSlots  = 300
	sweepEvery = time.Minute
)

// Config sets the guards' limits. It sits in config.toml under [guards];
// a zero count or rate turns that guard off.
type Config struct {
	// LoopWarnAt warns when the same request (same fingerprint from the same
	// token) is seen this many times within LoopWindow.
	LoopWarnAt int `toml:"loop_warn_at"`
	// LoopBlockAt refuses the request that makes this many within
	// LoopWindow, and every later one, until the block is lifted.
	LoopBlockAt int `toml:"loop_block_at"`
	// LoopWindow is how far back repeats are counted.
	LoopWindow time.Duration `toml:"loop_window"`

	// RateWindow is the trailing window of the spend-rate breaker.
	RateWindow time.Duration `toml:"rate_window"`
	// RateFraction trips the breaker when more than this fraction of the
	// daily cap is spent within RateWindow.
	RateFraction float64 `toml:"rate_fraction"`
	// RateUSDPerMin trips the breaker when spend within RateWindow exceeds
	// this many dollars a minute. When both limits are set, the lower wins.
	RateUSDPerMin float64 `toml:"rate_usd_per_min"`

	// RetryStormAt notifies when one script gets this many upstream 429 or
	// 5xx answers within RetryWindow.
	RetryStormAt int `toml:"retry_storm_at"`
	// RetryWindow is how far back upstream errors are counted.
	RetryWindow time.Duration `toml:"retry_window"`

	// Thresholds are the fractions of the daily cap whose crossing is
	// notified, once each per day. A fraction of 1 is critical. In
	// config.toml they are the top-level warn_at list.
	Thresholds []float64 `toml:"-"`
}

// DefaultConfig returns the defaults: warn at the 3rd and block at the 5th
// repeat within 10 minutes; pause when 20% of the cap goes within 5
// minutes; a retry storm is 10 errors within a minute; notify at 50%, 80%
// and 100% of the cap.
func DefaultConfig() Config {
	return Config{
		LoopWarnAt:   3,
		LoopBlockAt:  5,
		LoopWindow:   10 * time.Minute,
		RateWindow:   5 * time.Minute,
		RateFraction: 0.2,
		RetryStormAt: 10,
		RetryWindow:  time.Minute,
		Thresholds:   []float64{0.5, 0.8, 1.0},
	}
}

// Validate reports the first setting that makes no sense, as a sentence
// naming its config.toml key.
func (c Config) Validate() error {
	counts := []struct {
		key string
		n   int
	}{{"loop_warn_at", c.LoopWarnAt}, {"loop_block_at", c.LoopBlockAt}, {"retry_storm_at", c.RetryStormAt}}
	for _, f := range counts {
		if f.n < 0 || f.n == 1 || f.n > maxCount {
			return fmt.Errorf("guards.%s must be 0 (off) or between 2 and %d, not %d", f.key, maxCount, f.n)
		}
	}
	if c.LoopWarnAt > 0 && c.LoopBlockAt > 0 && c.LoopWarnAt >= c.LoopBlockAt {
		return fmt.Errorf("guards.loop_warn_at (%d) must be below guards.loop_block_at (%d)", c.LoopWarnAt, c.LoopBlockAt)
	}
	if math.IsNaN(c.RateFraction) || c.RateFraction < 0 || c.RateFraction > 1 {
		return fmt.Errorf("guards.rate_fraction must be a fraction of the cap between 0 (off) and 1, not %v", c.RateFraction)
	}
	if math.IsNaN(c.RateUSDPerMin) || math.IsInf(c.RateUSDPerMin, 0) || c.RateUSDPerMin < 0 || c.RateUSDPerMin > 1e6 {
		return fmt.Errorf("guards.rate_usd_per_min must be 0 (off) or a positive number of dollars, not %v", c.RateUSDPerMin)
	}
	windows := []struct {
		key string
		on  bool
		d   time.Duration
	}{
		{"loop_window", c.LoopWarnAt > 0 || c.LoopBlockAt > 0, c.LoopWindow},
		{"rate_window", c.RateFraction > 0 || c.RateUSDPerMin > 0, c.RateWindow},
		{"retry_window", c.RetryStormAt > 0, c.RetryWindow},
	}
	for _, w := range windows {
		if w.on && (w.d < time.Second || w.d > maxWindow) {
			return fmt.Errorf("guards.%s must be between 1s and 24h, not %v", w.key, w.d)
		}
	}
	for _, t := range c.Thresholds {
		if math.IsNaN(t) || t <= 0 || t > 1 {
			return fmt.Errorf("guards.thresholds are fractions of the cap above 0 and up to 1, not %v", t)
		}
	}
	return nil
}

// normalized returns a copy with the thresholds sorted and deduplicated.
func (c Config) normalized() Config {
	c.Thresholds = slices.Clone(c.Thresholds)
	slices.Sort(c.Thresholds)
	c.Thresholds = slices.Compact(c.Thresholds)
	return c
}

// Finding is something a guard noticed: what the caller should record as
// an event, notify, and, when Pause is set, do.
type Finding struct {
	// At is when it was noticed, by the Guard's clock.
	At time.Time
	// Kind is one of the Kind constants.
	Kind string
	// Label is the script concerned (the token's label), if any.
	Label string
	// Amount is the money at stake: the spend that triggered it.
	Amount money.USD
	// Title is a short headline for a desktop notification.
	Title string
	// Message is one line a person can act on: what happened, how much,
	// which script, what keycap did and what they can do.
	Message string
	// Critical asks for an urgent notification (beeep.Alert).
	Critical bool
	// Pause asks the caller to pause every token with reason SpendRate.
	Pause bool
	// Fingerprint is the request fingerprint of a loop finding.
	Fingerprint string
}

// Request is what the loop guard needs to know about a request before it
// is reserved.
type Request struct {
	// TokenID is the token the request came with; loops are counted per
	// token.
	TokenID string
	// Label names the script in messages.
	Label string
	// Endpoint and Model name the request in messages.
	Endpoint string
	Model    string
	// Fingerprint identifies the request's content (meter.Plan.Fingerprint);
	// requests without one are not counted.
	Fingerprint string
	// Estimate is the request's worst-case cost.
	Estimate money.USD
}

// Account is today's account as the budget sees it after a settlement or
// a refusal.
type Account struct {
	// Day is the budget's day, YYYY-MM-DD; thresholds and refusals are
	// notified once per Day.
	Day string
	// Spent is today's settled spend, Cap the daily cap.
	Spent money.USD
	Cap   money.USD
	// TopLabel and TopSpent name today's biggest spender, if known, so
	// messages can say where the money went.
	TopLabel string
	TopSpent money.USD
}

// Guard holds the guards' state. Create it with New.
type Guard struct {
	// Now is the clock, time.Now by default. Set it before first use.
	Now func() time.Time

	mu        sync.Mutex
	cfg       Config
	lastSweep time.Time

	loops map[loopKey]*loop

	rate    []rateSlot
	rateSum money.USD

	day     string
	dayCap  money.USD
	crossed float64
	denied  map[deniedKey]bool

	storms map[string]*storm
}

// New returns a Guard with cfg, or an error if cfg does not validate.
func New(cfg Config) (*Guard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Guard{
		Now:    time.Now,
		cfg:    cfg.normalized(),
		loops:  map[loopKey]*loop{},
		denied: map[deniedKey]bool{},
		storms: map[string]*storm{},
	}, nil
}

// SetConfig changes the limits at once, keeping what has been seen: blocks
// stay until lifted, and thresholds already passed today stay passed.
func (g *Guard) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cfg = cfg.normalized()
	for _, l := range g.loops {
		l.trim(g.keep())
	}
	for _, s := range g.storms {
		s.trim(cfg.RetryStormAt)
	}
	return nil
}

// Config returns the limits in force.
func (g *Guard) Config() Config {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.cfg
	c.Thresholds = slices.Clone(c.Thresholds)
	return c
}

func (g *Guard) now() time.Time {
	if g.Now == nil {
		return time.Now()
	}
	return g.Now()
}

// sweep drops state whose windows have passed, at most once a minute; the
// caller holds mu.
func (g *Guard) sweep(now time.Time) {
	if d := now.Sub(g.lastSweep); d >= 0 && d < sweepEvery {
		return
	}
	g.lastSweep = now
	for k, l := range g.loops {
		if l.block == nil && !l.live(now, g.cfg.LoopWindow) {
			delete(g.loops, k)
		}
	}
	for k, s := range g.storms {
		if !s.live(now, g.cfg.RetryWindow) {
			delete(g.storms, k)
		}
	}
}
