// Package budget keeps today's spend and reservations in memory and decides,
// atomically, whether a request's worst-case cost still fits under the daily
// cap and its token's budget. Concurrent requests reserve before they are
// forwarded, so together they can never overshoot.
package budget

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/problem"
)

// Budget is the running account of one local day. The zero value is not
// usable; call New.
type Budget struct {
	mu       sync.Mutex
	loc      *time.Location
	cap      money.USD
	day      string
	spent    money.USD
	reserved money.USD
	// external is spend keycap did not meter that counts against the cap:
	// what OpenAI reports beyond keycap's figure, when the cap is
	// organization-wide.
	external money.USD
	requests int64
	byModel  map[string]money.USD
	byLabel  map[string]money.USD
	tokens   map[string]*account
	paused   string
}

type account struct {
	budget, spent, reserved money.USD
}

// Hold is a reservation made by Reserve, to be settled or released once.
type Hold struct {
	Day     string
	TokenID string
	Amount  money.USD
}

// New returns a budget for the day of now in loc with the given cap.
func New(limit money.USD, loc *time.Location, now time.Time) *Budget {
	if loc == nil {
		loc = time.Local
	}
	b := &Budget{loc: loc, cap: limit, tokens: map[string]*account{}}
	b.reset(Day(now, loc))
	return b
}

// Day returns the calendar day of t in loc as YYYY-MM-DD.
func Day(t time.Time, loc *time.Location) string { return t.In(loc).Format(time.DateOnly) }

func (b *Budget) reset(day string) {
	b.day, b.spent, b.reserved, b.requests, b.external = day, 0, 0, 0, 0
	b.byModel, b.byLabel = map[string]money.USD{}, map[string]money.USD{}
}

// roll moves to the day of now if it has changed; the caller holds mu.
func (b *Budget) roll(now time.Time) {
	if d := Day(now, b.loc); d != b.day {
		b.reset(d)
	}
}

// Load sets today's figures from the ledger at start-up or rollover.
func (b *Budget) Load(day string, spent money.USD, requests int64, byModel, byLabel map[string]money.USD) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if day != b.day {
		b.reset(day)
	}
	b.spent, b.requests = spent, requests
	for k, v := range byModel {
		b.byModel[k] = v
	}
	for k, v := range byLabel {
		b.byLabel[k] = v
	}
}

// Track starts accounting for a token's own budget (0: none), with what it
// has already been charged.
func (b *Budget) Track(tokenID string, limit, spent money.USD) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens[tokenID] = &account{budget: limit, spent: spent}
}

// Forget stops accounting for a token.
func (b *Budget) Forget(tokenID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.tokens, tokenID)
}

// SetCap changes the daily cap at once.
func (b *Budget) SetCap(limit money.USD) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cap = limit
}

// SetLocation changes the time zone that decides where a day ends.
func (b *Budget) SetLocation(loc *time.Location, now time.Time) (dayChanged bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.loc = loc
	d := Day(now, loc)
	return d != b.day
}

// Location returns the time zone of the budget's days.
func (b *Budget) Location() *time.Location {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.loc
}

// Pause refuses every reservation until Resume; reason is shown to clients.
func (b *Budget) Pause(reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if reason == "" {
		reason = "user"
	}
	b.paused = reason
}

// Resume lifts a pause.
func (b *Budget) Resume() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.paused = ""
}

// Paused returns the reason keycap is paused, or "".
func (b *Budget) Paused() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.paused
}

// Reserve takes amount out of today's cap and the token's budget, or
// returns a *problem.Error saying why it cannot.
func (b *Budget) Reserve(now time.Time, tokenID string, amount money.USD) (Hold, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	if b.paused != "" {
		return Hold{}, problem.Errorf(problem.Paused, "keycap: all requests are paused (%s). Resume with `keycap resume` or from the tray.", pauseText(b.paused))
	}
	if b.spent+b.reserved+b.external+amount > b.cap {
		outside := ""
		if b.external > 0 {
			outside = fmt.Sprintf(", plus %s OpenAI reports was spent outside keycap", b.external)
		}
		return Hold{}, problem.Errorf(problem.DailyCapReached,
			"keycap: daily cap reached: spent %s of %s today%s (%s more reserved by requests in flight); this request could cost up to %s. Raise the cap with `keycap cap <dollars>` or in Settings, or wait for tomorrow.",
			b.spent, b.cap, outside, b.reserved, amount)
	}
	if a := b.tokens[tokenID]; a != nil && a.budget > 0 && a.spent+a.reserved+amount > a.budget {
		return Hold{}, problem.Errorf(problem.TokenBudgetReached,
			"keycap: this token's budget is used up: spent %s of its %s (this request could cost up to %s). Get a new token with `keycap token --budget <dollars>`.",
			a.spent, a.budget, amount)
	}
	b.reserved += amount
	if a := b.tokens[tokenID]; a != nil {
		a.reserved += amount
	}
	return Hold{Day: b.day, TokenID: tokenID, Amount: amount}, nil
}

func pauseText(reason string) string {
	switch reason {
	case "user":
		return "paused by you"
	case "spend_rate":
		return "paused because spending was too fast"
	}
	return reason
}

// Release returns a hold unspent (the request never went out).
func (b *Budget) Release(h Hold) {
	b.Settle(h, 0, "", "")
}

// Settle replaces a hold with the real cost. A hold from an earlier day
// settles against that day, which the ledger keeps; today's figures are not
// touched.
func (b *Budget) Settle(h Hold, cost money.USD, model, label string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a := b.tokens[h.TokenID]; a != nil {
		a.reserved -= h.Amount
		a.spent += cost
	}
	if h.Day != b.day {
		return
	}
	b.reserved -= h.Amount
	b.spent += cost
	if model != "" || label != "" {
		b.requests++
		b.byModel[model] += cost
		b.byLabel[label] += cost
	}
}

// SetExternal counts v, spent outside keycap on day, against the cap
// (replacing what was counted before); it lapses when the day ends.
func (b *Budget) SetExternal(now time.Time, day string, v money.USD) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	if day == b.day {
		b.external = max(v, 0)
	}
}

// Snapshot is the state of the day's account at one moment.
type Snapshot struct {
	Day      string
	Cap      money.USD
	Spent    money.USD
	Reserved money.USD
	// External is spend outside keycap counted against the cap.
	External  money.USD
	Remaining money.USD
	Requests  int64
	ByModel   []Share
	ByLabel   []Share
	Paused    string
}

// Share is one model's or script's part of the day's spend.
type Share struct {
	Name  string    `json:"name"`
	Spent money.USD `json:"spent_usd"`
}

// Snapshot returns the day's figures (rolling over to a new day first).
func (b *Budget) Snapshot(now time.Time) Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	s := Snapshot{Day: b.day, Cap: b.cap, Spent: b.spent, Reserved: b.reserved, External: b.external, Requests: b.requests, Paused: b.paused,
		ByModel: shares(b.byModel), ByLabel: shares(b.byLabel)}
	s.Remaining = max(0, b.cap-b.spent-b.reserved-b.external)
	return s
}

// TokenSpent returns what a token has been charged and has reserved.
func (b *Budget) TokenSpent(tokenID string) (spent, reserved money.USD) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a := b.tokens[tokenID]; a != nil {
		return a.spent, a.reserved
	}
	return 0, 0
}

// CapReached reports whether nothing more can be spent today.
func (s Snapshot) CapReached() bool { return s.Spent+s.Reserved+s.External >= s.Cap }

// String is a one-line summary.
func (s Snapshot) String() string {
	return fmt.Sprintf("%s: %s of %s spent, %s reserved", s.Day, s.Spent, s.Cap, s.Reserved)
}

func shares(m map[string]money.USD) []Share {
	out := make([]Share, 0, len(m))
	for k, v := range m {
		out = append(out, Share{Name: k, Spent: v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Spent != out[j].Spent {
			return out[i].Spent > out[j].Spent
		}
		return out[i].Name < out[j].Name
	})
	return out
}
