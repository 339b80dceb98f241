package guard

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/problem"
)

// idLen is the length of a Block's ID, a prefix of its fingerprint; Allow
// also takes any prefix at least minPrefix long.
const (
	idLen     = 12
	minPrefix = 8
)

type loopKey struct{ token, fp string }

type hit struct {
	at   time.Time
	cost money.USD
}

// loop is what the guard remembers of one fingerprint from one token.
type loop struct {
	label, endpoint, model string
	hits                   []hit // oldest first, at most Guard.keep()
	warned                 bool
	block                  *Block
}

// Block is a loop the guard refuses until it is lifted with Allow.
type Block struct {
	// ID is the start of the fingerprint, for `keycap allow <id>`.
	ID          string `json:"id"`
	Fingerprint string `json:"fingerprint"`
	TokenID     string `json:"token_id"`
	Label       string `json:"label,omitempty"`
	Endpoint    string `json:"endpoint,omitempty"`
	Model       string `json:"model,omitempty"`
	// Count is how many times the request was seen within the window when
	// it was blocked, the refused one included.
	Count int `json:"count"`
	// Spent is the worst-case cost of the repeats let through before it.
	Spent money.USD `json:"spent_usd"`
	// First is when the first of those repeats was seen, Since when the
	// block began.
	First time.Time `json:"first"`
	Since time.Time `json:"since"`
	// Refused counts the requests refused by the block.
	Refused int `json:"refused"`
}

// keep is how many hits a loop needs to remember; the caller holds mu.
func (g *Guard) keep() int { return max(g.cfg.LoopWarnAt, g.cfg.LoopBlockAt) }

func (l *loop) prune(now time.Time, window time.Duration) {
	i := 0
	for i < len(l.hits) && now.Sub(l.hits[i].at) >= window {
		i++
	}
	l.hits = slices.Delete(l.hits, 0, i)
}

func (l *loop) trim(n int) {
	if len(l.hits) > n {
		l.hits = slices.Delete(l.hits, 0, len(l.hits)-n)
	}
}

func (l *loop) live(now time.Time, window time.Duration) bool {
	return len(l.hits) > 0 && now.Sub(l.hits[len(l.hits)-1].at) < window
}

func (l *loop) newest() time.Time {
	if l.block != nil {
		return l.block.Since
	}
	if len(l.hits) == 0 {
		return time.Time{}
	}
	return l.hits[len(l.hits)-1].at
}

func sumCost(hits []hit) money.USD {
	var s money.USD
	for _, h := range hits {
		s += h.cost
	}
	return s
}

// Check counts a cost-bearing request before it is reserved. It returns a
// *problem.Error with code LoopBlocked when the request is refused as part
// of a loop, and a Finding when this request starts a warning or a block.
// Requests with no fingerprint are not counted.
func (g *Guard) Check(r Request) ([]Finding, error) {
	if r.Fingerprint == "" {
		return nil, nil
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.cfg
	g.sweep(now)
	k := loopKey{r.TokenID, r.Fingerprint}
	l := g.loops[k]
	if l != nil && l.block != nil {
		l.block.Refused++
		return nil, l.block.refusal(c.LoopWindow)
	}
	if c.LoopWarnAt == 0 && c.LoopBlockAt == 0 {
		return nil, nil
	}
	if l == nil {
		if len(g.loops) >= maxLoops {
			g.evictLoops()
		}
		l = &loop{}
		g.loops[k] = l
	}
	l.label, l.endpoint, l.model = r.Label, r.Endpoint, r.Model
	l.prune(now, c.LoopWindow)
	l.hits = append(l.hits, hit{now, r.Estimate})
	l.trim(g.keep())
	n := len(l.hits)
	span := now.Sub(l.hits[0].at)
	what := requestName(r.Endpoint, r.Model)
	switch {
	case c.LoopBlockAt > 0 && n >= c.LoopBlockAt:
		b := &Block{
			ID: shortID(r.Fingerprint), Fingerprint: r.Fingerprint, TokenID: r.TokenID, Label: r.Label,
			Endpoint: r.Endpoint, Model: r.Model, Count: n, Spent: sumCost(l.hits[:n-1]),
			First: l.hits[0].at, Since: now, Refused: 1,
		}
		l.block, l.hits = b, nil
		f := Finding{
			At: now, Kind: KindLoopBlocked, Label: r.Label, Amount: b.Spent, Fingerprint: r.Fingerprint,
			Title: fmt.Sprintf("keycap blocked a loop in %s", name(r.Label)),
			Message: fmt.Sprintf("%s sent the same %s request %d times in %s; keycap let %d through (up to %s) and now refuses it — if the repeats are intended, run `keycap allow %s` or lift the block from the tray",
				name(r.Label), what, n, human(span), n-1, b.Spent, b.ID),
		}
		return []Finding{f}, b.refusal(c.LoopWindow)
	case c.LoopWarnAt > 0 && n >= c.LoopWarnAt:
		if l.warned {
			return nil, nil
		}
		l.warned = true
		next := "loop blocking is off"
		if c.LoopBlockAt > 0 {
			next = fmt.Sprintf("will block it at %d", c.LoopBlockAt)
		}
		spent := sumCost(l.hits)
		return []Finding{{
			At: now, Kind: KindLoopWarning, Label: r.Label, Amount: spent, Fingerprint: r.Fingerprint,
			Title: fmt.Sprintf("keycap: %s may be stuck in a loop", name(r.Label)),
			Message: fmt.Sprintf("%s sent the same %s request %d times in %s (up to %s); keycap let it through and %s — stop the script if this is a loop",
				name(r.Label), what, n, human(span), spent, next),
		}}, nil
	default:
		l.warned = false
		return nil, nil
	}
}

// refusal is the error sent to the script whose request is blocked.
func (b *Block) refusal(window time.Duration) error {
	return problem.Errorf(LoopBlocked,
		"keycap: this exact %s request was sent %d times within %s, so keycap blocked it as a loop. If the repeats are intended, run `keycap allow %s` (or `keycap allow --all`), or lift the block from the tray.",
		requestName(b.Endpoint, b.Model), b.Count, human(window), b.ID)
}

// evictLoops makes room by forgetting the quarter of loops seen least
// recently, unblocked ones first; the caller holds mu. A forgotten block
// is re-established by a few more repeats.
func (g *Guard) evictLoops() {
	type entry struct {
		k       loopKey
		blocked bool
		at      time.Time
	}
	all := make([]entry, 0, len(g.loops))
	for k, l := range g.loops {
		all = append(all, entry{k, l.block != nil, l.newest()})
	}
	slices.SortFunc(all, func(a, b entry) int {
		if a.blocked != b.blocked {
			if a.blocked {
				return 1
			}
			return -1
		}
		return a.at.Compare(b.at)
	})
	for _, e := range all[:len(all)/4+1] {
		delete(g.loops, e.k)
	}
}

// Blocks lists the loops being refused, oldest block first.
func (g *Guard) Blocks() []Block {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Block
	for _, l := range g.loops {
		if l.block != nil {
			out = append(out, *l.block)
		}
	}
	slices.SortFunc(out, func(a, b Block) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.Fingerprint, b.Fingerprint)
	})
	return out
}

// Allow lifts the blocks that who names: a block's ID, its fingerprint or
// a prefix of it at least 8 characters long, a token ID, or a label. The
// repeat count starts again from zero, so a loop that goes on is blocked
// again after loop_block_at more repeats. It returns the lifted blocks.
func (g *Guard) Allow(who string) []Block {
	if who == "" {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Block
	for k, l := range g.loops {
		b := l.block
		if b == nil {
			continue
		}
		if who == b.Label || who == b.TokenID || who == b.Fingerprint ||
			(len(who) >= minPrefix && strings.HasPrefix(b.Fingerprint, who)) {
			out = append(out, *b)
			delete(g.loops, k)
		}
	}
	return out
}

// AllowAll lifts every block and returns how many there were.
func (g *Guard) AllowAll() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for k, l := range g.loops {
		if l.block != nil {
			n++
			delete(g.loops, k)
		}
	}
	return n
}

// Forget drops everything remembered of a token's requests, blocks
// included; call it when the token is revoked or expires.
func (g *Guard) Forget(tokenID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k := range g.loops {
		if k.token == tokenID {
			delete(g.loops, k)
		}
	}
}

func shortID(fp string) string {
	if len(fp) > idLen {
		return fp[:idLen]
	}
	return fp
}
