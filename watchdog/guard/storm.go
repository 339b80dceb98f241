package guard

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

type stormHit struct {
	at     time.Time
	status int
}

// storm is what the guard remembers of one script's upstream errors.
type storm struct {
	hits  []stormHit // oldest first, at most RetryStormAt
	fired bool
}

func (s *storm) prune(now time.Time, window time.Duration) {
	i := 0
	for i < len(s.hits) && now.Sub(s.hits[i].at) >= window {
		i++
	}
	s.hits = slices.Delete(s.hits, 0, i)
}

func (s *storm) trim(n int) {
	if len(s.hits) > n {
		s.hits = slices.Delete(s.hits, 0, len(s.hits)-n)
	}
}

func (s *storm) live(now time.Time, window time.Duration) bool {
	return len(s.hits) > 0 && now.Sub(s.hits[len(s.hits)-1].at) < window
}

// retryable reports whether an upstream answer is one a script tends to
// retry: 429, a 5xx, or no answer at all (status 0).
func retryable(status int) bool {
	return status == 0 || status == http.StatusTooManyRequests || status >= 500
}

// Upstream tells the guards how the OpenAI API answered a request by label
// (0: it did not answer). It returns a retry_storm Finding once per storm:
// when the script has had retry_storm_at errors within the window. The
// storm ends when a whole window passes without an error.
func (g *Guard) Upstream(label string, status int) []Finding {
	if !retryable(status) {
		return nil
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.cfg
	if c.RetryStormAt == 0 {
		return nil
	}
	g.sweep(now)
	s := g.storms[label]
	if s == nil {
		if len(g.storms) >= maxStorms {
			g.evictStorms()
		}
		s = &storm{}
		g.storms[label] = s
	}
	s.prune(now, c.RetryWindow)
	if len(s.hits) == 0 {
		s.fired = false
	}
	s.hits = append(s.hits, stormHit{now, status})
	s.trim(c.RetryStormAt)
	if len(s.hits) < c.RetryStormAt || s.fired {
		return nil
	}
	s.fired = true
	return []Finding{{
		At: now, Kind: KindRetryStorm, Label: label,
		Title: fmt.Sprintf("keycap: %s keeps retrying failed requests", name(label)),
		Message: fmt.Sprintf("%s got %d errors from the OpenAI API in %s (%s) and keeps retrying; keycap lets the retries through, and failed requests can still be billed — stop the script, or run `keycap pause`",
			name(label), len(s.hits), human(now.Sub(s.hits[0].at)), breakdown(s.hits)),
	}}
}

// breakdown counts errors by kind: "7× 429 rate limit, 3× 5xx server error".
func breakdown(hits []stormHit) string {
	var limited, server, none int
	for _, h := range hits {
		switch {
		case h.status == 0:
			none++
		case h.status == http.StatusTooManyRequests:
			limited++
		default:
			server++
		}
	}
	var parts []string
	if limited > 0 {
		parts = append(parts, fmt.Sprintf("%d× 429 rate limit", limited))
	}
	if server > 0 {
		parts = append(parts, fmt.Sprintf("%d× 5xx server error", server))
	}
	if none > 0 {
		parts = append(parts, fmt.Sprintf("%d× no answer", none))
	}
	return strings.Join(parts, ", ")
}

// evictStorms makes room by forgetting the quarter of scripts whose last
// error is oldest; the caller holds mu.
func (g *Guard) evictStorms() {
	type entry struct {
		label string
		at    time.Time
	}
	all := make([]entry, 0, len(g.storms))
	for k, s := range g.storms {
		var at time.Time
		if len(s.hits) > 0 {
			at = s.hits[len(s.hits)-1].at
		}
		all = append(all, entry{k, at})
	}
	slices.SortFunc(all, func(a, b entry) int { return a.at.Compare(b.at) })
	for _, e := range all[:len(all)/4+1] {
		delete(g.storms, e.label)
	}
}
