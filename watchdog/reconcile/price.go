package reconcile

import (
	"regexp"
	"strings"

	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/pricing"
)

// Price prices one usage result of kind k with keycap's own table, so that
// OpenAI's usage and keycap's ledger are priced alike. ok is false when the
// table has no price for the result's model in that unit (gpt-4o-mini-tts
// characters, say), or for costs results, which carry their own amount.
//
// Results add up many requests, so the long-context prices some cards have
// apply only when the average request is that long. Batch usage costs half.
// The Usage API does not say an image's quality, so images are priced at
// the cheapest quality of their size: a figure that is never too high, so
// that keycap's own standard-quality images do not read as untracked spend.
func Price(t *pricing.Table, k Kind, r Result) (money.USD, bool) {
	if t == nil {
		return 0, false
	}
	p, _, found := t.Lookup(r.Model)
	n := max(r.Requests, 1)
	switch k {
	case Completions, Embeddings:
		if !found || !p.PerToken() {
			return 0, false
		}
		if r.InputTokens/n <= 272_000 {
			p.InputPerTokenAbove272k, p.OutputPerTokenAbove272k = 0, 0
		}
		tier := pricing.TierDefault
		if r.ServiceTier == "priority" {
			tier = pricing.TierPriority
		}
		u := pricing.Tokens{Input: r.InputTokens}
		if k == Completions {
			u = pricing.Tokens{Input: r.InputTokens, Cached: r.InputCachedTokens, Output: r.OutputTokens,
				InputAudio: r.InputAudioTokens, OutputAudio: r.OutputAudioTokens,
				InputImage: r.InputImageTokens, OutputImage: r.OutputImageTokens}
		}
		c := p.TokenCost(u, tier)
		if r.Batch {
			c = (c + 1) / 2
		}
		return c, true
	case Images:
		var best money.USD
		ok := false
		for _, q := range []string{"standard", "low", "medium", "high", "hd"} {
			c, _, found := t.ImageCost(r.Model, r.Size, q, max(r.Images, 1))
			if found && (!ok || c < best) {
				best, ok = c, true
			}
		}
		if r.Images == 0 {
			return 0, ok
		}
		return best, ok
	case AudioSpeeches:
		if !found || !p.PerCharacter() {
			return 0, false
		}
		return p.CharacterCost(r.Characters), true
	case AudioTranscriptions:
		if !found || !p.PerSecond() {
			return 0, false
		}
		return p.SecondCost(r.Seconds), true
	}
	return 0, false
}

var (
	dated    = regexp.MustCompile(`-(\d{4}-\d{2}-\d{2}|\d{4})$`)
	provider = regexp.MustCompile(`^(openai|azure)/`)
)

// BaseModel is the model name without a provider prefix or date snapshot,
// so that the "gpt-4o-mini" a script asked keycap for and the
// "gpt-4o-mini-2024-07-18" OpenAI reports compare equal.
func BaseModel(m string) string {
	m = provider.ReplaceAllString(strings.TrimSpace(m), "")
	return dated.ReplaceAllString(m, "")
}
