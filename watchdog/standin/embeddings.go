package standin

import (
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
)

// embeddingDimensions are the native vector sizes; other models get 1536.
var embeddingDimensions = map[string]int{"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}

// embeddingMaxTokens is the longest input an embedding model takes.
const embeddingMaxTokens = 8192

func (s *Server) embeddings(x *exchange) {
	var req struct {
		Model          string          `json:"model"`
		Input          json.RawMessage `json:"input"`
		EncodingFormat string          `json:"encoding_format"`
		Dimensions     *int            `json:"dimensions"`
	}
	if !x.decode(&req) {
		return
	}
	x.note(req.Model, false)
	native := cmp.Or(embeddingDimensions[req.Model], 1536)
	dims := valueOr(req.Dimensions, native)
	inputs, ok := embeddingInputs(req.Model, req.Input)
	switch {
	case req.Model == "":
		x.missing("model")
		return
	case len(req.Input) == 0:
		x.missing("input")
		return
	case !ok:
		x.invalid("input", "invalid_value", "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.")
		return
	case req.Dimensions != nil && req.Model == "text-embedding-ada-002":
		x.invalid("dimensions", "unsupported_parameter", "This model does not support specifying dimensions.")
		return
	case dims < 1 || dims > native:
		x.invalid("dimensions", "invalid_value", "Invalid 'dimensions': expected a value between 1 and %d, but got %d instead.", native, dims)
		return
	case req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64":
		x.invalid("encoding_format", "invalid_value", "Invalid 'encoding_format': expected 'float' or 'base64', but got '%s' instead.", req.EncodingFormat)
		return
	}
	data := make([]obj, len(inputs))
	tokens := 0
	for i, in := range inputs {
		if in.tokens > embeddingMaxTokens {
			x.invalid("input", "", "This model's maximum context length is %d tokens, however you requested %d tokens (%d in your prompt; 0 for the completion). Please reduce your prompt; or completion length.", embeddingMaxTokens, in.tokens, in.tokens)
			return
		}
		tokens += in.tokens
		vec := embedding(in.key, dims)
		var v any = vec
		if req.EncodingFormat == "base64" {
			b := make([]byte, 0, 4*len(vec))
			for _, f := range vec {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
			}
			v = base64.StdEncoding.EncodeToString(b)
		}
		data[i] = obj{"object": "embedding", "index": i, "embedding": v}
	}
	x.json(obj{"object": "list", "data": data, "model": req.Model,
		"usage": obj{"prompt_tokens": tokens, "total_tokens": tokens}}, &Units{InputTokens: tokens})
}

type embeddingInput struct {
	key    string // what the vector is derived from
	tokens int
}

// embeddingInputs splits an embeddings input (a string, strings, tokens, or
// arrays of tokens) into its inputs, and reports whether it was valid: not
// empty, at most 2048 inputs, no empty string.
func embeddingInputs(model string, raw json.RawMessage) ([]embeddingInput, bool) {
	items, ok := as[[]json.RawMessage](raw)
	if !ok || len(items) > 0 && items[0][0] != '"' && items[0][0] != '[' {
		items = []json.RawMessage{raw} // one string, or one array of tokens
	}
	var inputs []embeddingInput
	for _, item := range items {
		if text, ok := as[string](item); ok && text != "" {
			inputs = append(inputs, embeddingInput{text, countTokens(model, text)})
		} else if ids, ok := as[[]int](item); ok && len(ids) > 0 {
			inputs = append(inputs, embeddingInput{fmt.Sprint(ids), len(ids)})
		} else {
			return nil, false
		}
	}
	return inputs, len(inputs) > 0 && len(inputs) <= 2048
}

// as decodes raw as a T.
func as[T any](raw json.RawMessage) (T, bool) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		var zero T
		return zero, false
	}
	return v, true
}

// embedding returns a unit vector of dims floats determined by key.
func embedding(key string, dims int) []float32 {
	h := fnv.New64a()
	h.Write([]byte(key))
	rng := rand.New(rand.NewPCG(h.Sum64(), 0x5eed))
	vec := make([]float32, dims)
	var norm float64
	for i := range vec {
		f := rng.NormFloat64()
		vec[i], norm = float32(f), norm+f*f
	}
	for i := range vec {
		vec[i] /= float32(math.Sqrt(norm))
	}
	return vec
}
