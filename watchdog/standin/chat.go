package standin

import (
	"encoding/json"
	"strconv"
)

func (s *Server) chat(x *exchange) {
	var req struct {
		Model               string    `json:"model"`
		Messages            []message `json:"messages"`
		N                   *int      `json:"n"`
		MaxTokens           *int      `json:"max_tokens"`
		MaxCompletionTokens *int      `json:"max_completion_tokens"`
		ReasoningEffort     string    `json:"reasoning_effort"`
		Stream              bool      `json:"stream"`
		StreamOptions       *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
		Tools json.RawMessage `json:"tools"`
	}
	if !x.decode(&req) {
		return
	}
	x.note(req.Model, req.Stream)
	limit := req.MaxCompletionTokens
	if limit == nil {
		limit = req.MaxTokens
	}
	n := valueOr(req.N, 1)
	switch {
	case req.Model == "":
		x.missing("model")
	case req.Messages == nil:
		x.missing("messages")
	case len(req.Messages) == 0:
		x.invalid("messages", "empty_array", "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.")
	case n < 1 || n > 128:
		x.invalid("n", "invalid_value", "Invalid 'n': expected a value between 1 and 128, but got %d instead.", n)
	case req.MaxTokens != nil && isReasoning(req.Model):
		x.invalid("max_tokens", "unsupported_parameter", "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.")
	case limit != nil && *limit < 1:
		x.invalid("max_completion_tokens", "integer_below_min_value", "Invalid 'max_completion_tokens': integer below minimum value. Expected a value >= 1, but got %d instead.", *limit)
	case req.StreamOptions != nil && !req.Stream:
		x.invalid("stream_options", "invalid_value", "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
	default:
		p := prompt{enc: encoding(req.Model)}
		for i, m := range req.Messages {
			if m.Role == "" {
				x.missing("messages[" + strconv.Itoa(i) + "].role")
				return
			}
			p.add(m)
		}
		if len(req.Tools) > 0 {
			p.text(string(req.Tools))
		}
		ids := p.end()
		in := Units{InputTokens: len(ids), CachedTokens: x.cached(ids)}
		r := newReply(req.Model, req.ReasoningEffort, limit)
		units := func(out int) Units { return in.generated(out, n*r.reasoning) }
		c := chatCompletion{id: x.id("chatcmpl-"), created: x.now(), model: req.Model, n: n, r: r}
		u := units(n * r.tokens())
		if req.Stream {
			x.stream(c.chunks(req.StreamOptions != nil && req.StreamOptions.IncludeUsage, u), units)
		} else {
			x.json(c.response(u), &u)
		}
	}
}

// chatCompletion is an answer to a chat completion request: n choices of r.
type chatCompletion struct {
	id      string
	created int64
	model   string
	n       int
	r       reply
}

func (c chatCompletion) finish() string {
	if c.r.cut {
		return "length"
	}
	return "stop"
}

func (c chatCompletion) object(kind string, choices []obj) obj {
	return obj{"id": c.id, "object": kind, "created": c.created, "model": c.model,
		"choices": choices, "service_tier": "default", "system_fingerprint": "fp_standin"}
}

func chatUsage(u Units) obj {
	return obj{"prompt_tokens": u.InputTokens, "completion_tokens": u.OutputTokens, "total_tokens": u.InputTokens + u.OutputTokens,
		"prompt_tokens_details": obj{"cached_tokens": u.CachedTokens, "audio_tokens": 0},
		"completion_tokens_details": obj{"reasoning_tokens": u.ReasoningTokens, "audio_tokens": 0,
			"accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
}

func (c chatCompletion) response(u Units) obj {
	choices := make([]obj, c.n)
	for i := range choices {
		choices[i] = obj{"index": i, "logprobs": nil, "finish_reason": c.finish(),
			"message": obj{"role": "assistant", "content": c.r.text(), "refusal": nil, "annotations": []any{}}}
	}
	o := c.object("chat.completion", choices)
	o["usage"] = chatUsage(u)
	return o
}

// chunks returns the stream of chat.completion.chunk events: a role chunk per
// choice, a chunk per token per choice, a finishing chunk per choice, the usage
// chunk when asked for, and [DONE].
func (c chatCompletion) chunks(includeUsage bool, u Units) []event {
	var events []event
	out := c.n * c.r.reasoning
	add := func(choices []obj, usage any) {
		o := c.object("chat.completion.chunk", choices)
		if includeUsage {
			o["usage"] = usage
		}
		events = append(events, newEvent("", o, out))
	}
	choice := func(i int, delta obj, finish any) []obj {
		return []obj{{"index": i, "delta": delta, "logprobs": nil, "finish_reason": finish}}
	}
	for i := range c.n {
		add(choice(i, obj{"role": "assistant", "content": "", "refusal": nil}, nil), nil)
	}
	for _, piece := range c.r.pieces {
		for i := range c.n {
			out++
			add(choice(i, obj{"content": piece}, nil), nil)
		}
	}
	for i := range c.n {
		add(choice(i, obj{}, c.finish()), nil)
	}
	if includeUsage {
		add([]obj{}, chatUsage(u))
	}
	return append(events, event{data: []byte("[DONE]"), tokens: out})
}
