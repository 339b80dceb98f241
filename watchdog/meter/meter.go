// Package meter reads OpenAI requests and responses as they pass through the
// proxy: before a request is forwarded it works out the model, the units and
// the worst-case cost to reserve; as the response streams back it finds the
// usage the API reports and prices what was really spent.
package meter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/pricing"
	"github.com/keycap/keycap/watchdog/problem"
)

// Endpoint names an API operation keycap meters.
type Endpoint string

// The endpoints keycap knows.
const (
	Chat           Endpoint = "chat.completions"
	Completions    Endpoint = "completions"
	Responses      Endpoint = "responses"
	Embeddings     Endpoint = "embeddings"
	Speech         Endpoint = "audio.speech"
	Transcriptions Endpoint = "audio.transcriptions"
	Translations   Endpoint = "audio.translations"
	ImageGenerate  Endpoint = "images.generations"
	ImageEdit      Endpoint = "images.edits"
	ImageVariation Endpoint = "images.variations"
	Moderations    Endpoint = "moderations"
	Other          Endpoint = "other"
)

// Classify names the endpoint of a request path relative to the API base
// ("/chat/completions"). Only POSTs cost money; everything else is Other.
func Classify(method, path string) Endpoint {
	if method != "POST" {
		return Other
	}
	p := strings.TrimSuffix(path, "/")
	switch p {
	case "/chat/completions":
		return Chat
	case "/completions":
		return Completions
	case "/responses":
		return Responses
	case "/embeddings":
		return Embeddings
	case "/audio/speech":
		return Speech
	case "/audio/transcriptions":
		return Transcriptions
	case "/audio/translations":
		return Translations
	case "/images/generations":
		return ImageGenerate
	case "/images/edits":
		return ImageEdit
	case "/images/variations":
		return ImageVariation
	case "/moderations":
		return Moderations
	}
	return Other
}

// Units is what a request consumed, in the units it is priced in.
type Units struct {
	pricing.Tokens
	Characters int64   `json:"characters,omitempty"`
	Images     int64   `json:"images,omitempty"`
	Seconds    float64 `json:"seconds,omitempty"`
}

// Plan is the meter's reading of a request before it is forwarded.
type Plan struct {
	Endpoint Endpoint
	Model    string
	// Card is the price card used ("gpt-4o", "hd/1792-x-1024/dall-e-3",
	// "fallback"), empty for free or unmetered requests.
	Card   string
	Stream bool
	// Estimate is the worst-case cost; it is reserved before forwarding.
	Estimate money.USD
	// Exact is true when the estimate is the price (TTS by character,
	// DALL-E), so no usage is needed from the response.
	Exact bool
	// Units are the units the estimate assumed.
	Units Units
	// Body is the body to forward; it differs from the client's when keycap
	// asked for usage in a stream.
	Body []byte
	// StripUsage is true when keycap added stream_options.include_usage, so
	// the final usage chunk is kept from the client, who did not ask for it.
	StripUsage bool
	// Fingerprint identifies the request's content for the loop guard.
	Fingerprint string
	// Note explains an estimate a person might question.
	Note string

	price pricing.Price
	tier  pricing.Tier
}

// Meter plans requests against a price table.
type Meter struct {
	Prices *pricing.Table
	// ConfigPath is named in the "unknown price" refusal.
	ConfigPath string
}

// MaxBody is the largest request body keycap reads (OpenAI's own upload
// limit for audio is 25 MB; chat requests with images can be larger).
const MaxBody = 64 << 20

// Plan reads a request body and returns what it will cost at most. It
// returns *problem.Error for bodies that are not valid requests and models
// without a price.
func (m *Meter) Plan(ep Endpoint, contentType string, body []byte) (*Plan, error) {
	p := &Plan{Endpoint: ep, Body: body}
	switch ep {
	case Chat, Completions:
		return p, m.planChat(p, body)
	case Responses:
		return p, m.planResponses(p, body)
	case Embeddings:
		return p, m.planEmbeddings(p, body)
	case Speech:
		return p, m.planSpeech(p, body)
	case Transcriptions, Translations:
		return p, m.planAudioUpload(p, contentType, body)
	case ImageGenerate:
		return p, m.planImageJSON(p, body)
	case ImageEdit, ImageVariation:
		return p, m.planImageUpload(p, contentType, body)
	case Moderations:
		var req struct {
			Model string `json:"model"`
		}
		if err := decode(body, &req); err != nil {
			return nil, err
		}
		p.Model, p.Exact = req.Model, true
		return p, nil
	}
	p.Exact = true
	p.Note = "endpoint not metered; logged at $0"
	return p, nil
}

func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return problem.Errorf(problem.Invalid, "keycap: the request body is empty; send a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return problem.Errorf(problem.Invalid, "keycap: the request body is not valid JSON (%s)", jsonProblem(err))
	}
	return nil
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case asErr(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case asErr(err, &te):
		return fmt.Sprintf("field %q should be %s, not %s", te.Field, te.Type, te.Value)
	}
	return "cannot parse"
}

func (m *Meter) price(p *Plan, model string) error {
	if strings.TrimSpace(model) == "" {
		return &problem.Error{Code: problem.Invalid, Param: "model", Message: "keycap: the request names no model; add \"model\""}
	}
	pr, card, ok := m.Prices.Lookup(model)
	if !ok {
		where := "config.toml"
		if m.ConfigPath != "" {
			where = m.ConfigPath
		}
		return &problem.Error{Code: problem.UnknownPrice, Param: "model", Message: fmt.Sprintf(
			"keycap: no price is known for model %q, so keycap cannot keep it under your cap. Add its price to %s as [prices.%q] with input_cost_per_token and output_cost_per_token (dollars per token), or set fallback_price = true there to charge unknown models at a conservative fallback price",
			model, where, model)}
	}
	p.Model, p.Card, p.price = model, card, pr
	return nil
}

func (p *Plan) setTier(tier string) {
	if tier == "priority" {
		p.tier = pricing.TierPriority
	}
}

func maxOut(pr pricing.Price, asked ...*int64) int64 {
	for _, a := range asked {
		if a != nil && *a > 0 {
			return *a
		}
	}
	if pr.MaxOutputTokens > 0 {
		return pr.MaxOutputTokens
	}
	return 32_768
}

func capInput(pr pricing.Price, n int64) int64 {
	if pr.MaxInputTokens > 0 && n > pr.MaxInputTokens {
		return pr.MaxInputTokens
	}
	return n
}

// pad adds a margin for differences between keycap's tokenizer and OpenAI's
// (tool schemas, image details), so the reservation stays an upper bound.
func pad(n int64) int64 { return n + n/20 + 16 }
