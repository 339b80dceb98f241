package meter

import (
	"encoding/json"

	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/pricing"
)

// usage is the union of the usage objects the OpenAI API reports.
type usage struct {
	PromptTokens     *int64   `json:"prompt_tokens"`
	CompletionTokens *int64   `json:"completion_tokens"`
	InputTokens      *int64   `json:"input_tokens"`
	OutputTokens     *int64   `json:"output_tokens"`
	Type             string   `json:"type"`
	Seconds          *float64 `json:"seconds"`

	PromptDetails     details `json:"prompt_tokens_details"`
	CompletionDetails details `json:"completion_tokens_details"`
	InputDetails      details `json:"input_tokens_details"`
	InputDetailsAlt   details `json:"input_token_details"`
	OutputDetails     details `json:"output_tokens_details"`
}

type details struct {
	CachedTokens    int64 `json:"cached_tokens"`
	AudioTokens     int64 `json:"audio_tokens"`
	ReasoningTokens int64 `json:"reasoning_tokens"`
	ImageTokens     int64 `json:"image_tokens"`
	TextTokens      int64 `json:"text_tokens"`
}

// Reading is the usage found in a response.
type Reading struct {
	Units Units
	Found bool
	// Model is the model the response names, when it names one.
	Model string
}

func (r *Reading) add(ep Endpoint, raw []byte) {
	var u usage
	if json.Unmarshal(raw, &u) != nil {
		return
	}
	var t pricing.Tokens
	switch {
	case u.Type == "duration" && u.Seconds != nil:
		r.Units = Units{Seconds: *u.Seconds}
		r.Found = true
		return
	case u.PromptTokens != nil:
		t.Input = *u.PromptTokens
		if u.CompletionTokens != nil {
			t.Output = *u.CompletionTokens
		}
		t.Cached = u.PromptDetails.CachedTokens
		t.InputAudio = u.PromptDetails.AudioTokens
		t.Reasoning = u.CompletionDetails.ReasoningTokens
		t.OutputAudio = u.CompletionDetails.AudioTokens
	case u.InputTokens != nil:
		t.Input = *u.InputTokens
		if u.OutputTokens != nil {
			t.Output = *u.OutputTokens
		}
		in := u.InputDetails
		if in == (details{}) {
			in = u.InputDetailsAlt
		}
		t.Cached = in.CachedTokens
		t.InputAudio = in.AudioTokens
		t.InputImage = in.ImageTokens
		t.Reasoning = u.OutputDetails.ReasoningTokens
		switch ep {
		case ImageGenerate, ImageEdit, ImageVariation:
			t.OutputImage = t.Output
		case Speech:
			t.OutputAudio = t.Output
		}
	default:
		return
	}
	r.Units = Units{Tokens: t}
	r.Found = true
}

// Settlement is the final charge for a request.
type Settlement struct {
	Cost  money.USD
	Units Units
	Exact bool
	Note  string
}

// Settle prices what happened to a request. status is the upstream HTTP
// status (0 if no response came back), sent is false only when the request
// provably never reached upstream, complete is true when the whole response
// body was read. Whatever is not known is charged at the reserved estimate.
func (p *Plan) Settle(status int, sent, complete bool, r Reading) Settlement {
	est := Settlement{Cost: p.Estimate, Units: p.Units}
	switch {
	case !sent:
		return Settlement{Exact: true, Note: "never reached upstream"}
	case status >= 400 && status < 500:
		// OpenAI does not bill requests it refuses.
		return Settlement{Exact: true, Note: "refused by upstream"}
	case status >= 500 || status == 0:
		est.Note = "upstream failed after receiving the request; counted at the estimate"
		return est
	}
	if r.Found {
		cost := p.cost(r.Units)
		if p.Exact && p.Units.Characters > 0 {
			// Character-priced speech reports token usage only for SSE;
			// the price is the characters sent.
			cost = max(cost, p.Estimate)
		}
		return Settlement{Cost: cost, Units: r.Units, Exact: true, Note: p.Note}
	}
	if p.Exact {
		return Settlement{Cost: p.Estimate, Units: p.Units, Exact: true, Note: p.Note}
	}
	switch {
	case !complete && p.Stream:
		est.Note = "stream ended before usage was reported; counted at the estimate"
	case !complete:
		est.Note = "response cut short before usage was reported; counted at the estimate"
	default:
		est.Note = "response reported no usage; counted at the estimate"
		if p.Note != "" {
			est.Note = p.Note
		}
	}
	return est
}

func (p *Plan) cost(u Units) money.USD {
	switch {
	case u.Seconds > 0 && p.price.PerSecond():
		return p.price.SecondCost(u.Seconds)
	case p.Units.Characters > 0 && p.price.PerCharacter():
		return p.price.CharacterCost(p.Units.Characters)
	}
	return p.price.TokenCost(u.Tokens, p.tier)
}

// PriceUsage prices token usage that an endpoint keycap does not meter
// reported for model; ok is false when the model has no price.
func (m *Meter) PriceUsage(model string, u Units) (money.USD, bool) {
	p, _, ok := m.Prices.Lookup(model)
	if !ok {
		return 0, false
	}
	return p.TokenCost(u.Tokens, pricing.TierDefault), true
}
