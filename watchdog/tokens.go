package watchdog

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/keycap/keycap/watchdog/budget"
	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/problem"
)

// TokenPrefix starts every keycap token, so one is easy to tell from a key.
const TokenPrefix = "kc-"

// tokenStore keeps the live tokens' hashes in memory, backed by the ledger.
type tokenStore struct {
	db        *ledger.DB
	now       func() time.Time
	budget    *budget.Budget
	rehearsal *budget.Budget

	mu   sync.RWMutex
	live map[[32]byte]ledger.Token
}

func (s *tokenStore) load(ctx context.Context) error {
	toks, err := s.db.LiveTokens(ctx, s.now())
	if err != nil {
		return err
	}
	ids := make([]string, len(toks))
	for i, t := range toks {
		ids[i] = t.ID
	}
	spent, err := s.db.TokenSpend(ctx, ids)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = map[[32]byte]ledger.Token{}
	for _, t := range toks {
		s.live[[32]byte(t.Hash)] = t
		s.account(t).Track(t.ID, t.Budget, spent[t.ID])
	}
	return nil
}

// account is the budget a token's requests are charged to.
func (s *tokenStore) account(t ledger.Token) *budget.Budget {
	if t.Rehearse {
		return s.rehearsal
	}
	return s.budget
}

// issue makes a token with 256 random bits; only its hash is kept.
func (s *tokenStore) issue(ctx context.Context, label string, ttl time.Duration, limit money.USD, rehearse bool) (string, ledger.Token, error) {
	if ttl <= 0 || ttl > config.MaxTokenTTL {
		return "", ledger.Token{}, problem.Errorf(problem.Invalid, "a token lives at most 24h; ask for a --ttl between 1s and 24h")
	}
	label = strings.TrimSpace(label)
	if label == "" {
		label = "terminal"
	}
	if len(label) > 64 {
		label = label[:64]
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", ledger.Token{}, problem.Wrap(err, "cannot make a token")
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	h := tokenHash(secret)
	now := s.now()
	t := ledger.Token{ID: "tok_" + hex.EncodeToString(h[:5]), Hash: h, Label: label, Created: now, Expires: now.Add(ttl), Budget: limit, Rehearse: rehearse}
	if err := s.db.PutToken(ctx, t); err != nil {
		return "", ledger.Token{}, problem.Wrap(err, "cannot store the token")
	}
	s.mu.Lock()
	s.live[[32]byte(h)] = t
	s.mu.Unlock()
	s.account(t).Track(t.ID, limit, 0)
	return secret, t, nil
}

// verify returns the live token for a secret, comparing hashes in
// constant time.
func (s *tokenStore) verify(secret string) (ledger.Token, error) {
	if !strings.HasPrefix(secret, TokenPrefix) {
		if strings.HasPrefix(secret, "sk-") {
			return ledger.Token{}, problem.Errorf(problem.InvalidToken, "keycap: this looks like a real OpenAI key. Scripts should use a keycap token instead: run `keycap exec -- your-command`, or `eval $(keycap env)`, and keep the key only in keycap")
		}
		return ledger.Token{}, problem.Errorf(problem.InvalidToken, "keycap: missing or invalid token. Get one with `keycap token`, or run your script with `keycap exec -- your-command`")
	}
	h := tokenHash(secret)
	s.mu.RLock()
	t, ok := s.live[[32]byte(h)]
	s.mu.RUnlock()
	if !ok || subtle.ConstantTimeCompare(t.Hash, h) != 1 {
		return ledger.Token{}, problem.Errorf(problem.InvalidToken, "keycap: this token is not valid (revoked, from another keycap, or mistyped). Get a new one with `keycap token`")
	}
	if !s.now().Before(t.Expires) {
		return ledger.Token{}, problem.Errorf(problem.TokenExpired, "keycap: this token expired at %s. Get a new one with `keycap token` (or rerun under `keycap exec`)", t.Expires.Format(time.Kitchen))
	}
	return t, nil
}

// revoke drops tokens from memory after the ledger has revoked them.
func (s *tokenStore) revoke(ctx context.Context, ids ...string) (int64, error) {
	n, err := s.db.Revoke(ctx, s.now(), ids...)
	if err != nil {
		return 0, err
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, t := range s.live {
		if len(ids) == 0 || want[t.ID] {
			delete(s.live, h)
			s.account(t).Forget(t.ID)
		}
	}
	return n, nil
}

func (s *tokenStore) list(now time.Time) []ledger.Token {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []ledger.Token
	for _, t := range s.live {
		if now.Before(t.Expires) {
			out = append(out, t)
		}
	}
	return out
}

func (s *tokenStore) count(now time.Time) int { return len(s.list(now)) }

// guessLimiter slows down token guessing: after too many bad tokens in a
// minute, every request is refused until the minute is over.
type guessLimiter struct {
	now   func() time.Time
	mu    sync.Mutex
	start time.Time
	n     int
}

const maxBadTokensPerMinute = 30

func newGuessLimiter(now func() time.Time) *guessLimiter { return &guessLimiter{now: now} }

// fail records a bad token and reports whether the limit is now exceeded.
func (g *guessLimiter) fail() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if now.Sub(g.start) > time.Minute {
		g.start, g.n = now, 0
	}
	g.n++
	return g.n > maxBadTokensPerMinute
}

func (g *guessLimiter) blocked() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n > maxBadTokensPerMinute && g.now().Sub(g.start) <= time.Minute
}

// IssueToken makes a token for a script. It is refused while paused or
// once the day's cap is reached, with the reason.
func (w *Watchdog) IssueToken(ctx context.Context, label string, ttl time.Duration, limit money.USD) (string, ledger.Token, error) {
	return w.NewToken(ctx, TokenOptions{Label: label, TTL: ttl, Budget: limit})
}

// TokenOptions describe a token to issue.
type TokenOptions struct {
	Label  string
	TTL    time.Duration // 0: the configured default
	Budget money.USD     // 0: only the daily cap
	// Rehearse sends the token's requests to the built-in stand-in.
	Rehearse bool
}

// NewToken makes a token for a script. A real token is refused while paused
// or once the day's cap is reached, with the reason; a rehearsal token only
// while paused.
func (w *Watchdog) NewToken(ctx context.Context, o TokenOptions) (string, ledger.Token, error) {
	label, ttl, limit := o.Label, o.TTL, o.Budget
	acct := w.budget
	if o.Rehearse {
		acct = w.rehearsal
	}
	s := acct.Snapshot(w.now())
	if s.Paused != "" {
		return "", ledger.Token{}, problem.Errorf(problem.Paused, "keycap is paused (%s), so no new tokens are issued. Resume with `keycap resume` or from the tray", s.Paused)
	}
	w.mu.RLock()
	hit := w.capHit == s.Day && !o.Rehearse
	w.mu.RUnlock()
	if s.Spent >= s.Cap || hit {
		return "", ledger.Token{}, problem.Errorf(problem.DailyCapReached, "today's cap is reached (%s of %s spent), so no new tokens are issued. Raise it with `keycap cap <dollars>` or wait for tomorrow", s.Spent, s.Cap)
	}
	if ttl == 0 {
		ttl = w.Config().TokenTTL.Duration
	}
	secret, t, err := w.tokens.issue(ctx, label, ttl, limit, o.Rehearse)
	if err == nil {
		w.log.Info("token issued", "id", t.ID, "label", t.Label, "expires", t.Expires)
		w.changed()
	}
	return secret, t, err
}

// Revoke revokes tokens by id, or all when ids is empty.
func (w *Watchdog) Revoke(ctx context.Context, ids ...string) (int64, error) {
	n, err := w.tokens.revoke(ctx, ids...)
	if err == nil {
		for _, id := range ids {
			w.watch.guard.Forget(id)
			w.rwatch.guard.Forget(id)
		}
		w.changed()
	}
	return n, err
}
