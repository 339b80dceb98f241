package standin

import (
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"slices"
	"strings"
	"sync"

	"github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

// replyText is what every model answers, cut short by token limits.
const replyText = "This is keycap's stand-in for the OpenAI API: no model was called, and this reply cost nothing."

const (
	// imagePartTokens is what a non-text message part (an image, audio, a
	// file) adds to a prompt: the price of a low-detail image.
	imagePartTokens = 85
	// The prompt cache serves prefixes of at least cacheMin tokens, growing in
	// steps of cacheStep, as OpenAI's does.
	cacheMin  = 1024
	cacheStep = 128
)

// reasoningEffort is how many reasoning tokens a reasoning model spends on
// each choice, by reasoning effort; the default is medium.
var reasoningEffort = map[string]int{"none": 0, "minimal": 8, "low": 24, "medium": 64, "high": 192, "xhigh": 384}

var (
	encMu     sync.Mutex
	encodings = map[string]*tiktoken.Tiktoken{}
)

// encoding returns model's tokenizer, o200k_base for models tiktoken does not
// know. Tokenizers are built once per process: building one takes a while.
func encoding(model string) *tiktoken.Tiktoken {
	name := tiktoken.MODEL_TO_ENCODING[model]
	for prefix, enc := range tiktoken.MODEL_PREFIX_TO_ENCODING {
		if name == "" && strings.HasPrefix(model, prefix) {
			name = enc
		}
	}
	if name == "" {
		name = tiktoken.MODEL_O200K_BASE
	}
	encMu.Lock()
	defer encMu.Unlock()
	if e := encodings[name]; e != nil {
		return e
	}
	if len(encodings) == 0 {
		tiktoken.SetBpeLoader(tiktoken_loader.NewOfflineLoader())
	}
	e, err := tiktoken.GetEncoding(name)
	if err != nil {
		e, _ = tiktoken.GetEncoding(tiktoken.MODEL_O200K_BASE)
	}
	encodings[name] = e
	return e
}

// countTokens returns the number of tokens in s for model.
func countTokens(model, s string) int {
	return len(encoding(model).EncodeOrdinary(s))
}

// isReasoning reports whether model thinks before it answers, as the o-series
// and GPT-5 models (but not their "-chat" variants) do.
func isReasoning(model string) bool {
	for _, p := range []string{"o1", "o3", "o4", "gpt-5", "codex-mini"} {
		if strings.HasPrefix(model, p) {
			return !strings.Contains(model, "-chat")
		}
	}
	return false
}

// message is a chat message, or an item of a Responses API input.
type message struct {
	Type       string          `json:"type"`
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       string          `json:"name"`
	ToolCalls  json.RawMessage `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
}

// prompt is the token sequence a request puts before the reply, counted the
// way OpenAI's cookbook counts chat tokens: 3 per message, the tokens of each
// field (1 more for a name), and 3 that prime the reply. The tokens that are
// not text are stand-ins (-1): only their number matters, and their place in
// the sequence for the prompt cache.
type prompt struct {
	enc *tiktoken.Tiktoken
	ids []int
}

func (p *prompt) text(s string) {
	p.ids = append(p.ids, p.enc.EncodeOrdinary(s)...)
}

func (p *prompt) add(m message) {
	p.ids = append(p.ids, -1, -1, -1)
	text, others := contentText(m.Content)
	for _, f := range []string{m.Role, text, m.Name, m.ToolCallID, string(m.ToolCalls)} {
		p.text(f)
	}
	if m.Name != "" {
		p.ids = append(p.ids, -1)
	}
	p.ids = append(p.ids, slices.Repeat([]int{-1}, others*imagePartTokens)...)
}

func (p *prompt) end() []int {
	return append(p.ids, -1, -1, -1)
}

// contentText returns the text of a message's content (a string, or an array
// of parts) and the number of parts that are not text.
func contentText(raw json.RawMessage) (string, int) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, 0
	}
	var parts []struct {
		Type, Text string
	}
	if json.Unmarshal(raw, &parts) != nil {
		return "", 0
	}
	var b strings.Builder
	others := 0
	for _, p := range parts {
		if strings.HasSuffix(p.Type, "text") {
			b.WriteString(p.Text)
		} else {
			others++
		}
	}
	return b.String(), others
}

// cached returns how many leading tokens of the prompt ids the prompt cache
// serves, and caches ids unless the request is to fail. A prefix is served
// when an earlier prompt to the same model began with it; only prefixes of
// cacheMin + k·cacheStep tokens count.
func (x *exchange) cached(ids []int) int {
	h := fnv.New64a()
	h.Write([]byte(x.rec.Model))
	var sums []uint64
	var buf [4]byte
	for i, id := range ids {
		binary.LittleEndian.PutUint32(buf[:], uint32(id))
		h.Write(buf[:])
		if n := i + 1; n >= cacheMin && (n-cacheMin)%cacheStep == 0 {
			sums = append(sums, h.Sum64())
		}
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	hit := 0
	for i, sum := range sums {
		if x.s.prefixes[sum] {
			hit = cacheMin + i*cacheStep
		}
		if x.fault == None || x.fault == DieMidStream {
			x.s.prefixes[sum] = true
		}
	}
	return hit
}

// reply is what a model generates for one choice.
type reply struct {
	reasoning int
	pieces    []string // the visible text, a token a piece
	cut       bool     // the token limit ended the reply
}

// newReply generates replyText after some reasoning, within limit tokens
// (reasoning included) when limit is set.
func newReply(model, effort string, limit *int) reply {
	var r reply
	if isReasoning(model) {
		r.reasoning = reasoningEffort["medium"]
		if n, ok := reasoningEffort[effort]; ok {
			r.reasoning = n
		}
	}
	enc := encoding(model)
	ids := enc.EncodeOrdinary(replyText)
	if limit != nil && r.reasoning+len(ids) > *limit {
		r.cut = true
		r.reasoning = min(r.reasoning, *limit)
		ids = ids[:*limit-r.reasoning]
	}
	for _, id := range ids {
		r.pieces = append(r.pieces, enc.Decode([]int{id}))
	}
	return r
}

// generated returns in with out output tokens, the first of them reasoning.
func (in Units) generated(out, reasoning int) Units {
	in.OutputTokens, in.ReasoningTokens = out, min(out, reasoning)
	return in
}

func (r reply) text() string { return strings.Join(r.pieces, "") }

func (r reply) tokens() int { return r.reasoning + len(r.pieces) }

// valueOr returns *p, or def when p is nil.
func valueOr[T any](p *T, def T) T {
	if p != nil {
		return *p
	}
	return def
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
