// Package reconcile compares keycap's own ledger with what OpenAI's
// organization Usage and Costs APIs report, to catch spend that did not go
// through keycap: the key used on another machine, by a teammate, from a
// notebook that still has it, or pasted into a tool.
//
// Those APIs see everything but late. A Reconciler reads them every few
// minutes with an admin key, prices the usage buckets of the local day with
// keycap's own price table (the Costs API only has UTC days), and calls
// spend OpenAI reports beyond what keycap metered "untracked", counting only
// buckets older than a delay allowance so that the API's lag raises no
// false alarm. Crossing a threshold is reported once per day and level.
package reconcile

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/pricing"
	"github.com/keycap/keycap/watchdog/problem"
)

// Defaults of the [reconcile] section.
const (
	DefaultInterval  = 5 * time.Minute
	DefaultDelay     = 15 * time.Minute
	DefaultThreshold = 50 * money.Cent
)

// Config is the [reconcile] section of config.toml.
type Config struct {
	// Interval is how often OpenAI is read (default 5m; at least 1m).
	Interval time.Duration `toml:"interval"`
	// Delay is the allowance for the API's lag: usage buckets younger than
	// this are shown but not compared (default 15m).
	Delay time.Duration `toml:"delay"`
	// UntrackedThresholdUSD is the untracked spend that raises an event and
	// a notification (default 0.50; 0 turns notifications off).
	UntrackedThresholdUSD float64 `toml:"untracked_threshold_usd"`
	// CountUntrackedAgainstCap makes the daily cap organization-wide: spend
	// OpenAI reports beyond keycap's own counts against the cap, so several
	// machines each running keycap share one budget.
	CountUntrackedAgainstCap bool `toml:"count_untracked_against_cap"`
	// BucketWidth is the width of the usage buckets read: "1m" (default)
	// or "1h", which is lighter but is used only where the local day starts
	// on a UTC hour.
	BucketWidth string `toml:"bucket_width"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Interval: DefaultInterval, Delay: DefaultDelay, UntrackedThresholdUSD: DefaultThreshold.Dollars(), BucketWidth: "1m"}
}

// Validate reports the first problem with c as a sentence.
func (c Config) Validate() error {
	switch {
	case c.Interval != 0 && c.Interval < time.Minute:
		return fmt.Errorf("reconcile.interval must be at least 1m, not %s (OpenAI's usage is minutes late anyway)", c.Interval)
	case c.Delay < 0 || c.Delay > 24*time.Hour:
		return fmt.Errorf("reconcile.delay must be between 0 and 24h, not %s", c.Delay)
	case c.UntrackedThresholdUSD < 0 || c.UntrackedThresholdUSD > 1e6:
		return fmt.Errorf("reconcile.untracked_threshold_usd must be between 0 and 1000000 dollars, not %v", c.UntrackedThresholdUSD)
	case c.BucketWidth != "" && c.BucketWidth != "1m" && c.BucketWidth != "1h":
		return fmt.Errorf(`reconcile.bucket_width must be "1m" or "1h", not %q`, c.BucketWidth)
	}
	return nil
}

// Threshold is the untracked spend that raises a finding.
func (c Config) Threshold() money.USD { return money.FromFloat(c.UntrackedThresholdUSD) }

func (c Config) interval() time.Duration {
	if c.Interval <= 0 {
		return DefaultInterval
	}
	return c.Interval
}

// Ledger is what a Reconciler reads and keeps in keycap's ledger;
// *ledger.DB is one.
type Ledger interface {
	// DayEntries returns every request of one local day.
	DayEntries(ctx context.Context, day string) ([]ledger.Entry, error)
	// State and SetState keep which findings were already raised, so a
	// restart does not raise them again.
	State(ctx context.Context, key string) (string, error)
	SetState(ctx context.Context, key, value string) error
}

var _ Ledger = (*ledger.DB)(nil)

// Snapshot is the comparison at one moment. Amounts OpenAI reports for the
// local day are its usage priced with keycap's table; the Costs API's own
// dollar figures cover UTC days, and CostsDays says which hours those are.
type Snapshot struct {
	Day      string `json:"day"`
	Timezone string `json:"timezone"`
	// Off says why reconciliation is off (no admin key); "" when on.
	Off string `json:"off,omitempty"`
	// AsOf is when OpenAI was last read successfully; zero if never.
	AsOf time.Time `json:"as_of,omitzero"`

	// ReportedToday is OpenAI's usage of the local day so far, priced with
	// keycap's table; it covers ReportedFrom (local midnight) to ReportedTo.
	ReportedToday money.USD `json:"reported_today_usd"`
	ReportedFrom  time.Time `json:"reported_from,omitzero"`
	ReportedTo    time.Time `json:"reported_to,omitzero"`
	// LatestUsage is the end of the newest bucket holding any usage: how
	// far OpenAI's figures have caught up.
	LatestUsage time.Time `json:"latest_usage,omitzero"`
	// BucketWidth is the width of the usage buckets read ("1m" or "1h").
	BucketWidth string `json:"bucket_width,omitempty"`
	// Timeline is ReportedToday bucket by bucket (buckets with usage only).
	Timeline []Point `json:"timeline,omitempty"`
	// Unpriced lists usage keycap's table cannot price; it is left out of
	// ReportedToday.
	Unpriced []Unpriced `json:"unpriced,omitempty"`

	// CostsDays are the Costs API's figures for the UTC days overlapping
	// the local day.
	CostsDays []CostDay `json:"costs_days,omitempty"`
	// ReportedMonth is the Costs API's total for the UTC month so far.
	ReportedMonth money.USD `json:"reported_month_usd"`
	MonthFrom     time.Time `json:"month_from,omitzero"`

	// LocalToday is what keycap metered for the local day (not rehearsals).
	LocalToday money.USD `json:"local_today_usd"`
	// Untracked is what OpenAI reports beyond what keycap metered, between
	// local midnight and CheckedThrough (now less the delay allowance).
	Untracked      money.USD `json:"untracked_usd"`
	CheckedThrough time.Time `json:"checked_through,omitzero"`
	// Sources says where untracked spend came from, the largest first.
	Sources []Source `json:"sources,omitempty"`
	// KeycapKeyID is the API key keycap's own requests appear under, as
	// far as the figures tell (the key whose usage best matches keycap's
	// ledger); "" when they do not tell.
	KeycapKeyID string `json:"keycap_key_id,omitempty"`

	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Point is the priced usage of one bucket.
type Point struct {
	Start  time.Time `json:"start"`
	Amount money.USD `json:"amount_usd"`
}

// CostDay is the Costs API's figure for one UTC day, From to To (To is
// now for the current day).
type CostDay struct {
	Day    string    `json:"day"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Amount money.USD `json:"amount_usd"`
}

// Unpriced is usage of a model keycap's table has no price for.
type Unpriced struct {
	Kind     Kind   `json:"kind"`
	Model    string `json:"model"`
	Requests int64  `json:"requests"`
}

// Source is what is known of where untracked spend came from: one API key,
// project and model, with the share of the model's untracked spend its
// usage accounts for.
type Source struct {
	APIKeyID  string `json:"api_key_id,omitempty"`
	ProjectID string `json:"project_id,omitempty"`
	Model     string `json:"model,omitempty"`
	// Amount is the untracked spend put down to this source.
	Amount money.USD `json:"amount_usd"`
	// Reported is all of this source's usage in the compared window.
	Reported money.USD `json:"reported_usd"`
	Requests int64     `json:"requests"`
}

// String names the source for people: "dall-e-3 on key key_abc in project proj_x".
func (s Source) String() string {
	var b strings.Builder
	b.WriteString(orNone(s.Model, "unknown model"))
	if s.APIKeyID != "" {
		b.WriteString(" on key " + s.APIKeyID)
	}
	if s.ProjectID != "" {
		b.WriteString(" in project " + s.ProjectID)
	}
	return b.String()
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

// Finding is untracked spend that crossed the threshold, to record as an
// event and show as a notification.
type Finding struct {
	At             time.Time `json:"at"`
	Day            string    `json:"day"`
	Untracked      money.USD `json:"untracked_usd"`
	Threshold      money.USD `json:"threshold_usd"`
	CheckedThrough time.Time `json:"checked_through"`
	Sources        []Source  `json:"sources,omitempty"`
	// Message is the one sentence to show.
	Message string `json:"message"`
}

// EventKind is the ledger event kind of a Finding.
const EventKind = "untracked_spend"

// Options configure a Reconciler. Client, Prices and Ledger are required.
type Options struct {
	Client *Client
	Prices *pricing.Table
	Ledger Ledger
	// Location is the time zone of the cap's day (default time.Local).
	Location *time.Location
	Config   Config
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives diagnostics (default: discard).
	Logger *slog.Logger
	// OnUntracked is called, outside any lock, when untracked spend first
	// reaches the threshold on a day, and again each time it doubles.
	OnUntracked func(Finding)
	// OnSync is called after every sync, successful or not, with the
	// snapshot (the engine updates its status and, when the cap is
	// organization-wide, the budget).
	OnSync func(Snapshot)
}

// Reconciler keeps the comparison up to date. Its methods are safe for
// concurrent use; syncs run one at a time.
type Reconciler struct {
	client      *Client
	ledger      Ledger
	now         func() time.Time
	log         *slog.Logger
	onUntracked func(Finding)
	onSync      func(Snapshot)

	syncMu sync.Mutex // one sync at a time

	mu     sync.RWMutex
	base   string // the API root, when set apart from the client's
	cfg    Config
	loc    *time.Location
	prices *pricing.Table
	snap   Snapshot
	kick   chan struct{}
}

// New returns a Reconciler; Run starts its polling.
func New(o Options) *Reconciler {
	r := &Reconciler{client: o.Client, ledger: o.Ledger, now: o.Now, log: o.Logger, onUntracked: o.OnUntracked, onSync: o.OnSync,
		kick: make(chan struct{}, 1)}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.client == nil {
		r.client = &Client{}
	}
	r.Configure(o.Config, o.Location, o.Prices)
	return r
}

// Configure applies a new configuration, time zone and price table; the
// next sync uses them.
func (r *Reconciler) Configure(c Config, loc *time.Location, prices *pricing.Table) {
	if loc == nil {
		loc = time.Local
	}
	if c.BucketWidth == "" {
		c.BucketWidth = "1m"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cfg, r.loc = c, loc
	if prices != nil {
		r.prices = prices
	}
}

// SetBaseURL points the next syncs at another API root (the upstream
// changed in Settings).
func (r *Reconciler) SetBaseURL(u string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.base = u
}

// Snapshot returns the latest comparison.
func (r *Reconciler) Snapshot() Snapshot {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.snap
}

// Kick asks Run to sync now rather than at the next interval.
func (r *Reconciler) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run syncs at once, then every interval and whenever kicked, until ctx
// ends. Failures are kept in the snapshot (LastError) and tried again at
// the next interval; the client has already retried what a retry fixes.
func (r *Reconciler) Run(ctx context.Context) error {
	for {
		if _, err := r.Sync(ctx); err != nil && ctx.Err() == nil {
			if problem.CodeOf(err) == problem.Internal {
				r.log.Error("reconcile with OpenAI", "err", err)
			} else {
				r.log.Debug("reconcile with OpenAI", "err", problem.MessageOf(err))
			}
		}
		r.mu.RLock()
		every := r.cfg.interval()
		r.mu.RUnlock()
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-r.kick:
			t.Stop()
		}
	}
}

// Sync reads OpenAI now, compares it with the ledger for today, raises a
// finding if untracked spend crossed the threshold, and returns the new
// snapshot. On failure the snapshot keeps the last good figures and says
// what went wrong.
func (r *Reconciler) Sync(ctx context.Context) (Snapshot, error) {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	now := r.now()
	r.mu.RLock()
	loc := r.loc
	r.mu.RUnlock()
	day := now.In(loc).Format(time.DateOnly)
	s, err := r.compare(ctx, day, now)
	r.mu.Lock()
	if err != nil {
		prev := r.snap
		if prev.Day != day {
			// Yesterday's figures are no answer for today.
			prev = Snapshot{Day: day, Timezone: loc.String(), LastSuccess: prev.LastSuccess}
		}
		prev.Off = ""
		if IsNeedsAdminKey(err) {
			prev.Off = problem.MessageOf(err)
		}
		prev.LastError, prev.LastErrorAt = problem.MessageOf(err), now
		r.snap = prev
	} else {
		s.LastSuccess = now
		r.snap = s
	}
	out := r.snap
	r.mu.Unlock()
	if err == nil {
		r.check(ctx, out)
	}
	if r.onSync != nil {
		r.onSync(out)
	}
	return out, err
}

// Day compares one local day (YYYY-MM-DD) without raising findings, for
// reports; for today it covers the day so far.
func (r *Reconciler) Day(ctx context.Context, day string) (Snapshot, error) {
	now := r.now()
	s, err := r.compare(ctx, day, now)
	if err != nil {
		return Snapshot{}, err
	}
	s.LastSuccess = now
	return s, nil
}

// notifiedKey is the ledger state that remembers the last finding: "day level".
const notifiedKey = "reconcile.untracked_notified"

// check raises a finding when untracked spend reaches the threshold, and
// again at twice, four times… the threshold, once per day and level.
func (r *Reconciler) check(ctx context.Context, s Snapshot) {
	r.mu.RLock()
	threshold := r.cfg.Threshold()
	r.mu.RUnlock()
	if threshold <= 0 || s.Untracked < threshold {
		return
	}
	level := int64(1)
	for s.Untracked >= threshold*money.USD(level*2) {
		level *= 2
	}
	prev, err := r.ledger.State(ctx, notifiedKey)
	if err != nil {
		r.log.Error("read reconcile state", "err", err)
	}
	pday, plevel, _ := strings.Cut(prev, " ")
	if n, _ := strconv.ParseInt(plevel, 10, 64); pday == s.Day && n >= level {
		return
	}
	if err := r.ledger.SetState(ctx, notifiedKey, s.Day+" "+strconv.FormatInt(level, 10)); err != nil {
		r.log.Error("write reconcile state", "err", err)
	}
	f := Finding{At: s.AsOf, Day: s.Day, Untracked: s.Untracked, Threshold: threshold, CheckedThrough: s.CheckedThrough,
		Sources: s.Sources, Message: findingMessage(s, r.location())}
	r.log.Info("untracked spend", "untracked", s.Untracked.String(), "checked_through", s.CheckedThrough)
	if r.onUntracked != nil {
		r.onUntracked(f)
	}
}

func (r *Reconciler) location() *time.Location {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.loc
}

func findingMessage(s Snapshot, loc *time.Location) string {
	msg := fmt.Sprintf("OpenAI reports %s of spend today that did not go through keycap (up to %s)",
		s.Untracked, s.CheckedThrough.In(loc).Format("15:04"))
	if len(s.Sources) > 0 {
		msg += fmt.Sprintf("; most of it %s, %s", s.Sources[0], s.Sources[0].Amount)
	}
	return msg + ": is the key in use elsewhere?"
}

// widthFor picks the usage bucket width for a day starting at start: 1h
// only when asked and when local midnight is on a UTC hour.
func widthFor(cfg Config, start time.Time) (string, time.Duration) {
	if cfg.BucketWidth == "1h" && start.Unix()%3600 == 0 {
		return "1h", time.Hour
	}
	return "1m", time.Minute
}

// ceil rounds t up to a multiple of d (in Unix time, so in UTC).
func ceil(t time.Time, d time.Duration) time.Time {
	f := t.Truncate(d)
	if f.Equal(t) {
		return t
	}
	return f.Add(d)
}

// group is priced usage of one API key, project and model.
type group struct {
	key, project, model string
	amount              money.USD
	requests            int64
}

// compare reads OpenAI and the ledger for one local day up to now.
func (r *Reconciler) compare(ctx context.Context, day string, now time.Time) (Snapshot, error) {
	r.mu.RLock()
	cfg, loc, prices := r.cfg, r.loc, r.prices
	client := *r.client
	if r.base != "" {
		client.BaseURL = r.base
	}
	r.mu.RUnlock()
	start, err := time.ParseInLocation(time.DateOnly, day, loc)
	if err != nil {
		return Snapshot{}, problem.Errorf(problem.Invalid, "%q is not a day like 2025-04-23", day)
	}
	dayEnd := start.AddDate(0, 0, 1)
	if !now.After(start) {
		return Snapshot{}, problem.Errorf(problem.Invalid, "%s has not begun yet", day)
	}
	end := now
	if end.After(dayEnd) {
		end = dayEnd
	}
	width, wd := widthFor(cfg, start)
	s := Snapshot{Day: day, Timezone: loc.String(), AsOf: now, ReportedFrom: start, BucketWidth: width}

	// OpenAI's usage of the local day, priced bucket by bucket. Buckets
	// count as compared once they are older than the delay allowance.
	cutoff := now.Add(-cfg.Delay)
	s.CheckedThrough = start
	s.ReportedTo = end
	groups := map[[3]string]*group{}
	unpriced := map[[2]string]*Unpriced{}
	timeline := map[int64]money.USD{}
	for _, k := range Kinds {
		bs, err := client.Usage(ctx, k, Query{Start: start, End: ceil(end, wd), Width: width, GroupBy: GroupBy(k)})
		if err != nil {
			return Snapshot{}, err
		}
		for _, b := range bs {
			if b.Start.Before(start) || !b.Start.Before(dayEnd) {
				continue
			}
			mature := !b.End.After(cutoff) && !b.End.After(dayEnd)
			if mature && b.End.After(s.CheckedThrough) {
				s.CheckedThrough = b.End
			}
			for _, res := range b.Results {
				if b.End.After(s.LatestUsage) && res.Requests > 0 {
					s.LatestUsage = b.End
				}
				c, ok := Price(prices, k, res)
				if !ok {
					u := unpriced[[2]string{string(k), res.Model}]
					if u == nil {
						u = &Unpriced{Kind: k, Model: res.Model}
						unpriced[[2]string{string(k), res.Model}] = u
					}
					u.Requests += res.Requests
					continue
				}
				s.ReportedToday += c
				timeline[b.Start.Unix()] += c
				if !mature {
					continue
				}
				id := [3]string{res.APIKeyID, res.ProjectID, BaseModel(res.Model)}
				g := groups[id]
				if g == nil {
					g = &group{key: id[0], project: id[1], model: id[2]}
					groups[id] = g
				}
				g.amount += c
				g.requests += res.Requests
			}
		}
	}
	for at, c := range timeline {
		s.Timeline = append(s.Timeline, Point{Start: time.Unix(at, 0).In(loc), Amount: c})
	}
	slices.SortFunc(s.Timeline, func(a, b Point) int { return a.Start.Compare(b.Start) })
	for _, u := range unpriced {
		s.Unpriced = append(s.Unpriced, *u)
	}
	slices.SortFunc(s.Unpriced, func(a, b Unpriced) int {
		return strings.Compare(string(a.Kind)+a.Model, string(b.Kind)+b.Model)
	})

	if err := costs(ctx, &client, &s, start, end, now, loc); err != nil {
		return Snapshot{}, err
	}

	// keycap's own figures: the whole day so far, and the compared window.
	entries, err := r.ledger.DayEntries(ctx, day)
	if err != nil {
		return Snapshot{}, problem.Wrap(err, "keycap could not read its ledger to compare it with OpenAI")
	}
	var metered money.USD
	byModel := map[string]money.USD{}
	for _, e := range entries {
		if e.Rehearsed {
			continue
		}
		s.LocalToday += e.Charged()
		if !e.Start.Before(start) && e.Start.Before(s.CheckedThrough) {
			metered += e.Charged()
			byModel[BaseModel(e.Model)] += e.Charged()
		}
	}
	var reported money.USD
	for _, g := range groups {
		reported += g.amount
	}
	if reported > metered {
		s.Untracked = reported - metered
	}
	s.KeycapKeyID = keycapKey(groups, byModel, metered)
	s.Sources = sources(groups, byModel, s.KeycapKeyID)
	return s, nil
}

// keycapKey finds the API key keycap's requests were made with: keycap
// holds one key, so its usage should match the ledger model by model. It is
// the key whose usage overlaps keycap's figures most, if that overlap is at
// least half of them.
func keycapKey(groups map[[3]string]*group, metered map[string]money.USD, total money.USD) string {
	byKey := map[string]map[string]money.USD{}
	for _, g := range groups {
		if byKey[g.key] == nil {
			byKey[g.key] = map[string]money.USD{}
		}
		byKey[g.key][g.model] += g.amount
	}
	best, bestKey := money.USD(0), ""
	for k, models := range byKey {
		var overlap money.USD
		for m, v := range models {
			overlap += min(v, metered[m])
		}
		if overlap > best || overlap == best && k < bestKey {
			best, bestKey = overlap, k
		}
	}
	if total <= 0 || best*2 < total {
		return ""
	}
	return bestKey
}

// sources says where untracked spend came from: all the usage of keys
// other than keycap's, and what keycap's own key used beyond keycap's
// figure for each model, shared among its projects by their usage.
func sources(groups map[[3]string]*group, metered map[string]money.USD, own string) []Source {
	ownByModel := map[string]money.USD{}
	for _, g := range groups {
		if own != "" && g.key == own {
			ownByModel[g.model] += g.amount
		}
	}
	var out []Source
	for _, g := range groups {
		amount := g.amount
		if own != "" && g.key == own {
			gap := ownByModel[g.model] - metered[g.model]
			if gap <= 0 {
				continue
			}
			amount = money.USD(float64(gap) * float64(g.amount) / float64(ownByModel[g.model]))
		} else if own == "" {
			// Whose is whose is unknown: each model's excess over keycap's
			// figure, shared among all who used it.
			var all money.USD
			for _, h := range groups {
				if h.model == g.model {
					all += h.amount
				}
			}
			gap := all - metered[g.model]
			if gap <= 0 {
				continue
			}
			amount = money.USD(float64(gap) * float64(g.amount) / float64(all))
		}
		if amount <= 0 {
			continue
		}
		out = append(out, Source{APIKeyID: g.key, ProjectID: g.project, Model: g.model, Amount: amount, Reported: g.amount, Requests: g.requests})
	}
	slices.SortFunc(out, func(a, b Source) int {
		if c := cmp.Compare(b.Amount, a.Amount); c != 0 {
			return c
		}
		return strings.Compare(a.String(), b.String())
	})
	if len(out) > 10 {
		out = out[:10]
	}
	return out
}

// costs reads the Costs API's UTC days overlapping [start, end) and the
// UTC month so far.
func costs(ctx context.Context, client *Client, s *Snapshot, start, end, now time.Time, loc *time.Location) error {
	last := end.Add(-time.Nanosecond).UTC()
	month := time.Date(last.Year(), last.Month(), 1, 0, 0, 0, 0, time.UTC)
	from := start.UTC().Truncate(24 * time.Hour)
	if month.Before(from) {
		from = month
	}
	bs, err := client.Costs(ctx, Query{Start: from, End: ceil(end, 24*time.Hour)})
	if err != nil {
		return err
	}
	s.MonthFrom = month
	for _, b := range bs {
		var sum money.USD
		for _, res := range b.Results {
			if res.Amount.Currency == "" || strings.EqualFold(res.Amount.Currency, "usd") {
				sum += money.FromFloat(res.Amount.Value)
			}
		}
		if !b.Start.Before(month) {
			s.ReportedMonth += sum
		}
		if b.End.After(start) && b.Start.Before(end) {
			to := b.End
			if to.After(now) {
				to = now
			}
			s.CostsDays = append(s.CostsDays, CostDay{Day: b.Start.UTC().Format(time.DateOnly), From: b.Start.In(loc), To: to.In(loc), Amount: sum})
		}
	}
	return nil
}

// Summary returns the lines the CLI and the dashboard show, each a
// sentence: what OpenAI reports next to keycap's figure and which hours
// each covers, untracked spend, and the last sync and error.
func (s Snapshot) Summary(loc *time.Location) []string {
	if loc == nil {
		loc = time.Local
	}
	if s.Off != "" {
		return []string{"Reconciliation with OpenAI is off: it " + strings.TrimPrefix(s.Off, offPrefix) + "."}
	}
	hm := func(t time.Time) string { return t.In(loc).Format("15:04") }
	var out []string
	if s.AsOf.IsZero() {
		line := "OpenAI's figures: not read yet"
		if s.LastError != "" {
			line += " (" + s.LastError + ")"
		}
		return []string{line + "."}
	}
	today := s.AsOf.In(loc).Format(time.DateOnly) == s.Day
	when := "today"
	if !today {
		when = "on " + s.Day
	}
	out = append(out, fmt.Sprintf("OpenAI reports %s %s (as of %s; usage from 00:00 local, priced with keycap's table); keycap metered %s.",
		s.ReportedToday, when, hm(s.AsOf), s.LocalToday))
	for _, d := range s.CostsDays {
		out = append(out, fmt.Sprintf("OpenAI billed %s for the UTC day %s (%s to %s your time).",
			d.Amount, d.Day, dayTime(d.From, s.ReportedFrom, loc, today), dayTime(d.To, s.ReportedFrom, loc, today)))
	}
	out = append(out, fmt.Sprintf("OpenAI billed %s this month (UTC, since %s).", s.ReportedMonth, s.MonthFrom.UTC().Format("Jan 2")))
	if s.Untracked > 0 {
		line := fmt.Sprintf("Untracked: %s spent outside keycap up to %s", s.Untracked, dayTime(s.CheckedThrough, s.ReportedFrom, loc, today))
		if len(s.Sources) > 0 {
			var parts []string
			for _, src := range s.Sources[:min(len(s.Sources), 3)] {
				parts = append(parts, fmt.Sprintf("%s %s", src, src.Amount))
			}
			line += ": " + strings.Join(parts, "; ")
		}
		out = append(out, line+".")
	}
	for _, u := range s.Unpriced {
		out = append(out, fmt.Sprintf("%d %s request(s) of %s could not be priced and are left out.", u.Requests, u.Kind, orNone(u.Model, "an unnamed model")))
	}
	line := "Last sync " + hm(s.LastSuccess) + "."
	if s.LastError != "" {
		line = fmt.Sprintf("Last sync %s; last error at %s: %s.", hm(s.LastSuccess), hm(s.LastErrorAt), s.LastError)
	}
	return append(out, line)
}

// dayTime formats t as a time of day, naming the day when it is not the
// local day that starts at dayStart ("yesterday" when that day is today).
func dayTime(t, dayStart time.Time, loc *time.Location, today bool) string {
	lt, ds := t.In(loc), dayStart.In(loc)
	switch {
	case lt.Format(time.DateOnly) == ds.Format(time.DateOnly):
		return lt.Format("15:04")
	case lt.Format(time.DateOnly) == ds.AddDate(0, 0, 1).Format(time.DateOnly) && lt.Hour() == 0 && lt.Minute() == 0:
		return "midnight"
	case today && lt.Format(time.DateOnly) == ds.AddDate(0, 0, -1).Format(time.DateOnly):
		return "yesterday " + lt.Format("15:04")
	}
	return lt.Format("Jan 2 15:04")
}
