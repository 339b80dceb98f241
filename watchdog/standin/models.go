package standin

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// moderationCategories are the categories every moderation result scores.
var moderationCategories = []string{"harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
	"self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors", "violence", "violence/graphic"}

// moderations flags nothing. It is free, like the real endpoint, but its input
// tokens are recorded.
func (s *Server) moderations(x *exchange) {
	var req struct {
		Model string          `json:"model"`
		Input json.RawMessage `json:"input"`
	}
	if !x.decode(&req) {
		return
	}
	model := cmp.Or(req.Model, "omni-moderation-latest")
	x.note(model, false)
	if len(req.Input) == 0 {
		x.missing("input")
		return
	}
	texts, ok := as[[]string](req.Input)
	if !ok { // a string, or multimodal parts, make one input
		text, _ := contentText(req.Input)
		texts = []string{text}
	}
	categories, scores, types := obj{}, obj{}, obj{}
	for _, c := range moderationCategories {
		categories[c], scores[c], types[c] = false, 1e-6, []string{"text"}
	}
	results := make([]obj, len(texts))
	tokens := 0
	for i, t := range texts {
		tokens += countTokens(model, t)
		results[i] = obj{"flagged": false, "categories": categories, "category_scores": scores, "category_applied_input_types": types}
	}
	x.json(obj{"id": x.id("modr-"), "model": model, "results": results}, &Units{InputTokens: tokens})
}

// models are the models GET /v1/models lists.
var models = []string{"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini", "gpt-5-nano",
	"o3", "o3-mini", "o4-mini", "text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002",
	"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe",
	"dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-1-mini", "omni-moderation-latest"}

func modelObject(id string) obj {
	return obj{"id": id, "object": "model", "created": 1698959748, "owned_by": "system"}
}

func (s *Server) listModels(x *exchange) {
	data := make([]obj, len(models))
	for i, m := range models {
		data[i] = modelObject(m)
	}
	x.json(obj{"object": "list", "data": data}, nil)
}

// retrieveModel answers for the listed models and for those with a price.
func (s *Server) retrieveModel(x *exchange) {
	id := strings.TrimPrefix(x.r.URL.Path, "/v1/models/")
	x.note(id, false)
	_, priced := s.opts.Prices[id]
	if !slices.Contains(models, id) && (!priced || strings.Contains(id, "/")) {
		x.fail(http.StatusNotFound, "invalid_request_error", "model_not_found", "model", fmt.Sprintf("The model '%s' does not exist", id))
		return
	}
	x.json(modelObject(id), nil)
}
