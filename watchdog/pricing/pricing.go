// Package pricing turns model names and usage into dollars, from LiteLLM's
// maintained price table (embedded) plus the user's own overrides.
package pricing

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/keycap/keycap/watchdog/money"
)

//go:embed litellm/model_prices.json
var embedded []byte

// Price is the price card of one model, in dollars per unit as LiteLLM gives
// them. The JSON names are LiteLLM's, so config.toml overrides use them too.
type Price struct {
	Mode                      string  `json:"mode" toml:"mode"`
	MaxOutputTokens           int64   `json:"max_output_tokens" toml:"max_output_tokens"`
	MaxInputTokens            int64   `json:"max_input_tokens" toml:"max_input_tokens"`
	InputPerToken             float64 `json:"input_cost_per_token" toml:"input_cost_per_token"`
	OutputPerToken            float64 `json:"output_cost_per_token" toml:"output_cost_per_token"`
	CacheReadPerToken         float64 `json:"cache_read_input_token_cost" toml:"cache_read_input_token_cost"`
	OutputPerReasoningToken   float64 `json:"output_cost_per_reasoning_token" toml:"output_cost_per_reasoning_token"`
	InputPerAudioToken        float64 `json:"input_cost_per_audio_token" toml:"input_cost_per_audio_token"`
	OutputPerAudioToken       float64 `json:"output_cost_per_audio_token" toml:"output_cost_per_audio_token"`
	InputPerImageToken        float64 `json:"input_cost_per_image_token" toml:"input_cost_per_image_token"`
	OutputPerImageToken       float64 `json:"output_cost_per_image_token" toml:"output_cost_per_image_token"`
	InputPerCharacter         float64 `json:"input_cost_per_character" toml:"input_cost_per_character"`
	InputPerSecond            float64 `json:"input_cost_per_second" toml:"input_cost_per_second"`
	OutputPerSecond           float64 `json:"output_cost_per_second" toml:"output_cost_per_second"`
	InputPerImage             float64 `json:"input_cost_per_image" toml:"input_cost_per_image"`
	InputPerPixel             float64 `json:"input_cost_per_pixel" toml:"input_cost_per_pixel"`
	InputPerTokenAbove272k    float64 `json:"input_cost_per_token_above_272k_tokens" toml:"input_cost_per_token_above_272k_tokens"`
	OutputPerTokenAbove272k   float64 `json:"output_cost_per_token_above_272k_tokens" toml:"output_cost_per_token_above_272k_tokens"`
	InputPerTokenPriority     float64 `json:"input_cost_per_token_priority" toml:"input_cost_per_token_priority"`
	OutputPerTokenPriority    float64 `json:"output_cost_per_token_priority" toml:"output_cost_per_token_priority"`
	CacheReadPerTokenPriority float64 `json:"cache_read_input_token_cost_priority" toml:"cache_read_input_token_cost_priority"`
}

// IsZero reports whether the card carries no price at all.
func (p Price) IsZero() bool {
	q := p
	q.Mode, q.MaxOutputTokens, q.MaxInputTokens = "", 0, 0
	return q == Price{}
}

// Table is a read-only set of price cards. It is safe for concurrent use.
type Table struct {
	models   map[string]Price
	fallback *Price
	source   map[string]string
}

// Load builds a table from the embedded LiteLLM prices, the user's overrides
// (which replace a model's card whole) and an optional fallback card used for
// models with no price (nil: such models are refused).
func Load(overrides map[string]Price, fallback *Price) (*Table, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(embedded, &raw); err != nil {
		return nil, fmt.Errorf("read embedded price table: %w", err)
	}
	t := &Table{models: make(map[string]Price, len(raw)), source: map[string]string{}, fallback: fallback}
	for name, msg := range raw {
		if name == "sample_spec" || len(msg) == 0 || msg[0] != '{' {
			continue
		}
		var p Price
		if err := json.Unmarshal(msg, &p); err != nil {
			continue // A malformed card is skipped; the model then has no price and is refused.
		}
		t.models[name] = p
		t.source[name] = "litellm"
	}
	for name, p := range overrides {
		t.models[name] = p
		t.source[name] = "config"
	}
	return t, nil
}

var (
	dateSuffix  = regexp.MustCompile(`-(\d{4}-\d{2}-\d{2}|\d{4})$`)
	providerPre = regexp.MustCompile(`^(openai|azure)/`)
)

// Lookup finds the price card for a model as a client names it. Dated names
// (gpt-4o-2024-08-06, gpt-4-0613) use their own card when the table has one,
// else their base model's; a provider prefix (openai/gpt-4o) is ignored. It
// returns the name of the card used. With a fallback card configured, an
// unknown model gets it and the returned name is "fallback".
func (t *Table) Lookup(model string) (Price, string, bool) {
	m := strings.TrimSpace(model)
	for _, cand := range candidates(m) {
		if p, ok := t.models[cand]; ok {
			return p, cand, true
		}
	}
	if t.fallback != nil && m != "" {
		return *t.fallback, "fallback", true
	}
	return Price{}, "", false
}

func candidates(m string) []string {
	out := []string{m}
	base := providerPre.ReplaceAllString(m, "")
	if base != m {
		out = append(out, base)
	}
	if d := dateSuffix.ReplaceAllString(base, ""); d != base {
		out = append(out, d)
	}
	return out
}

// Raw returns the embedded LiteLLM entries as plain maps, for code that
// prices on its own (the stand-in's bill).
func Raw() map[string]map[string]any {
	var raw map[string]json.RawMessage
	json.Unmarshal(embedded, &raw)
	out := make(map[string]map[string]any, len(raw))
	for k, v := range raw {
		var m map[string]any
		if json.Unmarshal(v, &m) == nil {
			out[k] = m
		}
	}
	return out
}

// Source tells where a card came from: "litellm", "config" or "".
func (t *Table) Source(name string) string { return t.source[name] }

// Models lists every model with a card, sorted.
func (t *Table) Models() []string {
	out := make([]string, 0, len(t.models))
	for k := range t.models {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Tokens is token usage as the chat, Responses and embeddings APIs report it.
// Cached, reasoning, audio and image counts are subsets of Input or Output.
type Tokens struct {
	Input       int64 `json:"input"`
	Cached      int64 `json:"cached,omitempty"`
	Output      int64 `json:"output"`
	Reasoning   int64 `json:"reasoning,omitempty"`
	InputAudio  int64 `json:"input_audio,omitempty"`
	OutputAudio int64 `json:"output_audio,omitempty"`
	InputImage  int64 `json:"input_image,omitempty"`
	OutputImage int64 `json:"output_image,omitempty"`
}

// Tier is the service tier a request asked for.
type Tier string

// Service tiers priced differently by OpenAI.
const (
	TierDefault  Tier = ""
	TierPriority Tier = "priority"
)

// TokenCost prices token usage. Reasoning tokens count as output (OpenAI bills
// them so) unless the card prices them separately; cached input is billed at
// the cache-read price when the card has one.
func (p Price) TokenCost(u Tokens, tier Tier) money.USD {
	in, out, cache := p.InputPerToken, p.OutputPerToken, p.CacheReadPerToken
	if tier == TierPriority && p.InputPerTokenPriority > 0 {
		in, out = p.InputPerTokenPriority, p.OutputPerTokenPriority
		if p.CacheReadPerTokenPriority > 0 {
			cache = p.CacheReadPerTokenPriority
		}
	}
	if u.Input > 272_000 && p.InputPerTokenAbove272k > 0 {
		in = p.InputPerTokenAbove272k
		if p.OutputPerTokenAbove272k > 0 {
			out = p.OutputPerTokenAbove272k
		}
	}
	if cache == 0 {
		cache = in
	}
	audioIn := p.InputPerAudioToken
	if audioIn == 0 {
		audioIn = in
	}
	audioOut := p.OutputPerAudioToken
	if audioOut == 0 {
		audioOut = out
	}
	imgIn := p.InputPerImageToken
	if imgIn == 0 {
		imgIn = in
	}
	imgOut := p.OutputPerImageToken
	if imgOut == 0 {
		imgOut = out
	}
	textIn := nonNeg(u.Input - u.Cached - u.InputAudio - u.InputImage)
	reasoning := u.Reasoning
	reasonPrice := out
	if p.OutputPerReasoningToken > 0 {
		reasonPrice = p.OutputPerReasoningToken
	} else {
		reasoning = 0 // already inside Output at the output price
	}
	textOut := nonNeg(u.Output - u.OutputAudio - u.OutputImage - reasoning)
	d := float64(textIn)*in + float64(nonNeg(u.Cached))*cache +
		float64(nonNeg(u.InputAudio))*audioIn + float64(nonNeg(u.InputImage))*imgIn +
		float64(textOut)*out + float64(reasoning)*reasonPrice +
		float64(nonNeg(u.OutputAudio))*audioOut + float64(nonNeg(u.OutputImage))*imgOut
	return money.FromFloat(d)
}

// CharacterCost prices text-to-speech billed per input character.
func (p Price) CharacterCost(chars int64) money.USD {
	return money.FromFloat(float64(nonNeg(chars)) * p.InputPerCharacter)
}

// SecondCost prices audio billed per second of input.
func (p Price) SecondCost(seconds float64) money.USD {
	if seconds < 0 || math.IsNaN(seconds) {
		seconds = 0
	}
	rate := p.InputPerSecond
	if rate == 0 {
		rate = p.OutputPerSecond
	}
	return money.FromFloat(seconds * rate)
}

// PerCharacter reports whether the card prices text-to-speech by character.
func (p Price) PerCharacter() bool { return p.InputPerCharacter > 0 }

// PerSecond reports whether the card prices audio by the second.
func (p Price) PerSecond() bool { return p.InputPerSecond > 0 }

// PerToken reports whether the card has any token price.
func (p Price) PerToken() bool {
	return p.InputPerToken > 0 || p.OutputPerToken > 0 || p.InputPerImageToken > 0 || p.OutputPerImageToken > 0
}

// ImageCost prices n images of a size and quality from the per-size cards
// (e.g. "hd/1792-x-1024/dall-e-3", "1024-x-1024/dall-e-2",
// "high/1024-x-1536/gpt-image-1"). Empty, "auto" or unknown size or quality
// resolve to the most expensive matching card, so an estimate is never low.
// ok is false when the table has no per-image price for the model.
func (t *Table) ImageCost(model, size, quality string, n int64) (cost money.USD, card string, ok bool) {
	_, base, found := t.Lookup(model)
	if !found || base == "fallback" {
		base = dateSuffix.ReplaceAllString(providerPre.ReplaceAllString(model, ""), "")
	}
	if n < 1 {
		n = 1
	}
	size = strings.ToLower(strings.TrimSpace(size))
	quality = strings.ToLower(strings.TrimSpace(quality))
	if base == "dall-e-3" || base == "dall-e-2" {
		if size == "" || size == "auto" {
			size = "1024x1024"
		}
		if base == "dall-e-3" && (quality == "" || quality == "auto") {
			quality = "standard"
		}
	}
	var best float64
	for name, p := range t.models {
		q, s, m, ok := splitImageCard(name)
		if !ok || m != base {
			continue
		}
		if size != "" && size != "auto" && s != strings.Replace(size, "x", "-x-", 1) {
			continue
		}
		if quality != "" && quality != "auto" && q != quality && !(q == "" && base == "dall-e-2") {
			continue
		}
		per := p.InputPerImage
		if per == 0 {
			w, h := pixels(s)
			per = p.InputPerPixel * float64(w*h)
		}
		if per > best {
			best, card = per, name
		}
	}
	if best == 0 {
		return 0, "", false
	}
	return money.FromFloat(best * float64(n)), card, true
}

// splitImageCard splits "hd/1024-x-1024/dall-e-3" into quality, size, model.
func splitImageCard(name string) (quality, size, model string, ok bool) {
	parts := strings.Split(name, "/")
	switch len(parts) {
	case 2:
		size, model = parts[0], parts[1]
	case 3:
		quality, size, model = parts[0], parts[1], parts[2]
	default:
		return "", "", "", false
	}
	if w, h := pixels(size); w == 0 || h == 0 {
		return "", "", "", false
	}
	return quality, size, model, true
}

func pixels(size string) (int64, int64) {
	a, b, ok := strings.Cut(size, "-x-")
	if !ok {
		return 0, 0
	}
	w, err1 := strconv.ParseInt(a, 10, 64)
	h, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0
	}
	return w, h
}

func nonNeg(v int64) int64 {
	if v < 0 {
		return 0
	}
	return v
}
