package guard

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/problem"
)

// rateSlot sums the spend settled within one slice of the rate window.
type rateSlot struct {
	first, last time.Time
	total       money.USD
	labels      map[string]money.USD
}

type deniedKey struct{ label, code string }

// Spent tells the guards that a request by label settled at cost, leaving
// today's account at a. It returns a spend_rate Finding with Pause set when
// spend over the trailing window exceeds the limit, and a threshold Finding
// when a fraction of the cap is crossed for the first time today.
func (g *Guard) Spent(label string, cost money.USD, a Account) []Finding {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweep(now)
	var out []Finding
	if f, ok := g.rateCheck(now, label, cost, a.Cap); ok {
		out = append(out, f)
	}
	g.roll(a)
	if g.dayCap != a.Cap {
		// The cap changed: what was already past the new levels before
		// this settlement is not news.
		g.dayCap, g.crossed = a.Cap, g.level(a.Spent-cost, a.Cap)
	}
	if l := g.level(a.Spent, a.Cap); l > g.crossed {
		g.crossed = l
		out = append(out, g.thresholdFinding(now, l, label, a))
	}
	return out
}

// Prime tells the guards today's account at start-up, so that thresholds
// already crossed before a restart are not notified again.
func (g *Guard) Prime(a Account) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.roll(a)
	g.dayCap, g.crossed = a.Cap, g.level(a.Spent, a.Cap)
}

// roll starts a new day when a is of another day; the caller holds mu.
func (g *Guard) roll(a Account) {
	if a.Day == g.day {
		return
	}
	g.day, g.dayCap, g.crossed = a.Day, a.Cap, 0
	clear(g.denied)
}

// level is the highest threshold that spent has reached; the caller holds
// mu.
func (g *Guard) level(spent, limit money.USD) float64 {
	if limit <= 0 {
		return 0
	}
	var l float64
	for _, t := range g.cfg.Thresholds {
		if spent >= money.USD(math.Round(t*float64(limit))) {
			l = t
		}
	}
	return l
}

func (g *Guard) thresholdFinding(now time.Time, level float64, label string, a Account) Finding {
	who, by := label, ""
	if a.TopLabel != "" {
		who = a.TopLabel
		by = fmt.Sprintf("; most by %s (%s)", name(a.TopLabel), a.TopSpent)
	} else if label != "" {
		by = "; last by " + name(label)
	}
	f := Finding{At: now, Kind: KindThreshold, Label: who, Amount: a.Spent}
	if level >= 1 {
		f.Critical = true
		f.Title = "keycap: daily cap reached"
		f.Message = fmt.Sprintf("today's %s cap is reached (%s spent%s); keycap refuses requests that would go over it until tomorrow — raise it with `keycap cap <dollars>` only if you must",
			a.Cap, a.Spent, by)
		return f
	}
	f.Title = fmt.Sprintf("keycap: %s of today's cap spent", percent(level))
	f.Message = fmt.Sprintf("%s of today's %s cap is spent, past %s%s; keycap lets requests through until the cap — check `keycap status`, and stop any script that should not be spending",
		a.Spent, a.Cap, percent(level), by)
	return f
}

// rateLimit is the most the breaker lets be spent within the rate window,
// 0 when it is off, and how the limit was set; the caller holds mu.
func (g *Guard) rateLimit(limit money.USD) (money.USD, string) {
	c := g.cfg
	var best money.USD
	var why string
	if c.RateFraction > 0 && limit > 0 {
		best = money.USD(math.Round(c.RateFraction * float64(limit)))
		why = fmt.Sprintf("%s of the %s daily cap", percent(c.RateFraction), limit)
	}
	if c.RateUSDPerMin > 0 {
		l := money.FromFloat(c.RateUSDPerMin * c.RateWindow.Minutes())
		if best == 0 || l < best {
			best = l
			why = fmt.Sprintf("%s a minute", money.FromFloat(c.RateUSDPerMin))
		}
	}
	return best, why
}

// rateCheck adds a settlement to the trailing window and trips the breaker
// when the window holds more than the limit; the caller holds mu.
func (g *Guard) rateCheck(now time.Time, label string, cost, limit money.USD) (Finding, bool) {
	c := g.cfg
	ceiling, why := g.rateLimit(limit)
	if ceiling <= 0 {
		g.rate, g.rateSum = nil, 0
		return Finding{}, false
	}
	i := 0
	for i < len(g.rate) && now.Sub(g.rate[i].last) >= c.RateWindow {
		g.rateSum -= g.rate[i].total
		i++
	}
	g.rate = slices.Delete(g.rate, 0, i)
	if cost <= 0 {
		return Finding{}, false
	}
	width := max(time.Second, c.RateWindow/rateSlots)
	if n := len(g.rate); n == 0 || now.Sub(g.rate[n-1].first) >= width || now.Before(g.rate[n-1].last) {
		g.rate = append(g.rate, rateSlot{first: now, labels: map[string]money.USD{}})
	}
	s := &g.rate[len(g.rate)-1]
	s.last, s.total = now, s.total+cost
	s.labels[label] += cost
	g.rateSum += cost
	if g.rateSum <= ceiling {
		return Finding{}, false
	}

	sum := g.rateSum
	by := map[string]money.USD{}
	for _, s := range g.rate {
		for l, v := range s.labels {
			by[l] += v
		}
	}
	top := label
	for l, v := range by {
		if v > by[top] || (v == by[top] && l < top) {
			top = l
		}
	}
	// Start a fresh window: what is settled while paused must exceed the
	// limit again before the breaker trips again.
	g.rate, g.rateSum = nil, 0
	return Finding{
		At: now, Kind: KindSpendRate, Label: top, Amount: sum, Critical: true, Pause: true,
		Title: "keycap paused all requests: spending too fast",
		Message: fmt.Sprintf("%s was spent in the last %s, over the limit of %s; most by %s (%s); keycap paused every token — check your scripts, then run `keycap resume` or resume from the tray",
			sum, human(c.RateWindow), why, name(top), by[top]),
	}, true
}

// Denied tells the guards that the budget refused a request by label with
// err, leaving today's account at a. It returns a Finding the first time a
// script is refused for a reason today, for the reasons a person should
// hear about: the daily cap, the token's budget, a pause. When the refusal
// is the first sign that the cap is reached, the Finding is the critical
// 100% threshold instead.
func (g *Guard) Denied(label string, err error, a Account) []Finding {
	code := problem.CodeOf(err)
	switch code {
	case problem.DailyCapReached, problem.TokenBudgetReached, problem.Paused:
	default:
		return nil
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.roll(a)
	k := deniedKey{label, code}
	if g.denied[k] {
		return nil
	}
	if len(g.denied) >= maxDenied {
		clear(g.denied)
	}
	g.denied[k] = true

	if n := len(g.cfg.Thresholds); code == problem.DailyCapReached && n > 0 {
		// The cap refuses the request that would go over it, so spend
		// may never reach 100%: the refusal is the crossing.
		if top := g.cfg.Thresholds[n-1]; top >= 1 && g.crossed < top {
			g.crossed = top
			f := g.thresholdFinding(now, top, label, a)
			f.Label = label
			f.Message = fmt.Sprintf("today's %s cap is reached (%s spent); keycap refused a request from %s and refuses requests that would go over the cap until tomorrow — raise it with `keycap cap <dollars>` only if you must",
				a.Cap, a.Spent, name(label))
			return []Finding{f}
		}
	}
	f := Finding{At: now, Kind: KindTokenDenied, Label: label, Amount: a.Spent,
		Title: fmt.Sprintf("keycap refused %s", name(label))}
	switch code {
	case problem.DailyCapReached:
		f.Message = fmt.Sprintf("%s was refused: today's %s cap is reached (%s spent); keycap refuses its requests until tomorrow — raise the cap with `keycap cap <dollars>` only if you must",
			name(label), a.Cap, a.Spent)
	case problem.TokenBudgetReached:
		f.Message = fmt.Sprintf("%s was refused: its token's own budget is used up; keycap refuses its requests — give it a new token with `keycap token --budget <dollars>`",
			name(label))
	case problem.Paused:
		why := strings.TrimSuffix(strings.TrimPrefix(problem.MessageOf(err), "keycap: "), ".")
		f.Message = fmt.Sprintf("%s was refused: %s", name(label), why)
	}
	return []Finding{f}
}
