package standin

import (
	"cmp"
	"encoding/json"
	"maps"
)

func (s *Server) responses(x *exchange) {
	var req struct {
		Model           string          `json:"model"`
		Input           json.RawMessage `json:"input"`
		Instructions    *string         `json:"instructions"`
		MaxOutputTokens *int            `json:"max_output_tokens"`
		Reasoning       struct {
			Effort string `json:"effort"`
		} `json:"reasoning"`
		Temperature *float64        `json:"temperature"`
		TopP        *float64        `json:"top_p"`
		Metadata    json.RawMessage `json:"metadata"`
		Stream      bool            `json:"stream"`
	}
	if !x.decode(&req) {
		return
	}
	x.note(req.Model, req.Stream)
	p := prompt{enc: encoding(req.Model)}
	if req.Instructions != nil {
		p.add(message{Role: "developer", Content: jsonString(*req.Instructions)})
	}
	var input string
	var items []json.RawMessage
	switch {
	case req.Model == "":
		x.missing("model")
		return
	case len(req.Input) == 0:
		x.missing("input")
		return
	case req.MaxOutputTokens != nil && *req.MaxOutputTokens < 16:
		x.invalid("max_output_tokens", "integer_below_min_value", "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got %d instead.", *req.MaxOutputTokens)
		return
	case json.Unmarshal(req.Input, &input) == nil:
		p.add(message{Role: "user", Content: req.Input})
	case json.Unmarshal(req.Input, &items) == nil:
		for _, item := range items {
			var m message
			json.Unmarshal(item, &m)
			if m.Role == "" { // tool calls and their outputs count as their JSON
				m = message{Role: m.Type, Content: jsonString(string(item))}
			}
			p.add(m)
		}
	default:
		x.invalid("input", "invalid_type", "Invalid type for 'input': expected a string or an array of input items.")
		return
	}
	ids := p.end()
	in := Units{InputTokens: len(ids), CachedTokens: x.cached(ids)}
	r := newReply(req.Model, req.Reasoning.Effort, req.MaxOutputTokens)
	units := func(out int) Units { return in.generated(out, r.reasoning) }
	effort := any(nil)
	if isReasoning(req.Model) {
		effort = cmp.Or(req.Reasoning.Effort, "medium")
	}
	meta := any(obj{})
	if len(req.Metadata) > 0 {
		meta = req.Metadata
	}
	rs := response{base: obj{"id": x.id("resp_"), "object": "response", "created_at": x.now(), "model": req.Model,
		"instructions": req.Instructions, "max_output_tokens": req.MaxOutputTokens, "error": nil, "previous_response_id": nil,
		"parallel_tool_calls": true, "reasoning": obj{"effort": effort, "summary": nil}, "store": true,
		"temperature": valueOr(req.Temperature, 1), "top_p": valueOr(req.TopP, 1), "text": obj{"format": obj{"type": "text"}, "verbosity": "medium"},
		"tool_choice": "auto", "tools": []any{}, "truncation": "disabled", "user": nil, "metadata": meta, "service_tier": "default"},
		messageID: x.id("msg_"), reasoningID: x.id("rs_"), r: r}
	u := units(r.tokens())
	if req.Stream {
		x.stream(rs.events(u), units)
	} else {
		x.json(rs.object(rs.status(), rs.output(), &u), &u)
	}
}

// response is an answer to a Responses API request.
type response struct {
	base                   obj // the fields that do not change while it is generated
	messageID, reasoningID string
	r                      reply
}

func (rs response) status() string {
	if rs.r.cut {
		return "incomplete"
	}
	return "completed"
}

// object returns the Response object; usage is nil while it is in progress.
func (rs response) object(status string, output []obj, u *Units) obj {
	o := obj{"status": status, "output": output, "usage": nil, "incomplete_details": nil, "completed_at": nil}
	maps.Copy(o, rs.base)
	if u != nil {
		o["completed_at"] = o["created_at"]
		o["usage"] = obj{"input_tokens": u.InputTokens, "output_tokens": u.OutputTokens, "total_tokens": u.InputTokens + u.OutputTokens,
			"input_tokens_details":  obj{"cached_tokens": u.CachedTokens, "cache_write_tokens": 0},
			"output_tokens_details": obj{"reasoning_tokens": u.ReasoningTokens}}
	}
	if status == "incomplete" {
		o["incomplete_details"] = obj{"reason": "max_output_tokens"}
	}
	return o
}

func (rs response) reasoningItem() obj {
	return obj{"id": rs.reasoningID, "type": "reasoning", "summary": []any{}}
}

func (rs response) messageItem(status string, content []obj) obj {
	return obj{"id": rs.messageID, "type": "message", "status": status, "role": "assistant", "content": content}
}

func textPart(text string) obj {
	return obj{"type": "output_text", "text": text, "annotations": []any{}, "logprobs": []any{}}
}

// output returns the finished output items: a reasoning item for reasoning
// models, and a message unless reasoning used up the whole token limit.
func (rs response) output() []obj {
	var items []obj
	if rs.r.reasoning > 0 {
		items = append(items, rs.reasoningItem())
	}
	if len(rs.r.pieces) > 0 {
		items = append(items, rs.messageItem(rs.status(), []obj{textPart(rs.r.text())}))
	}
	return items
}

// events returns the stream of a response, from response.created to
// response.completed (or response.incomplete), numbered by sequence_number.
func (rs response) events(u Units) []event {
	var events []event
	out := rs.r.reasoning
	add := func(typ string, o obj) {
		o["type"], o["sequence_number"] = typ, len(events)
		events = append(events, newEvent(typ, o, out))
	}
	add("response.created", obj{"response": rs.object("in_progress", []obj{}, nil)})
	add("response.in_progress", obj{"response": rs.object("in_progress", []obj{}, nil)})
	index := 0
	if rs.r.reasoning > 0 {
		add("response.output_item.added", obj{"output_index": 0, "item": rs.reasoningItem()})
		add("response.output_item.done", obj{"output_index": 0, "item": rs.reasoningItem()})
		index = 1
	}
	if len(rs.r.pieces) > 0 {
		text := rs.r.text()
		inPart := func(o obj) obj {
			maps.Copy(o, obj{"item_id": rs.messageID, "output_index": index, "content_index": 0})
			return o
		}
		add("response.output_item.added", obj{"output_index": index, "item": rs.messageItem("in_progress", []obj{})})
		add("response.content_part.added", inPart(obj{"part": textPart("")}))
		for _, piece := range rs.r.pieces {
			out++
			add("response.output_text.delta", inPart(obj{"delta": piece, "logprobs": []any{}}))
		}
		add("response.output_text.done", inPart(obj{"text": text, "logprobs": []any{}}))
		add("response.content_part.done", inPart(obj{"part": textPart(text)}))
		add("response.output_item.done", obj{"output_index": index, "item": rs.messageItem(rs.status(), []obj{textPart(text)})})
	}
	add("response."+rs.status(), obj{"response": rs.object(rs.status(), rs.output(), &u)})
	return events
}
