package meter

import (
	"strings"
	"sync"

	"github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

// exactLimit is the text size above which tokens are bounded by the byte
// count (a BPE token is at least one byte) instead of being counted: cheap,
// and never low.
const exactLimit = 64 << 10

var (
	loaderOnce sync.Once
	encMu      sync.Mutex
	encoders   = map[string]*tiktoken.Tiktoken{}
)

func encodingFor(model string) string {
	m := strings.ToLower(model)
	switch {
	case strings.HasPrefix(m, "gpt-4o"), strings.HasPrefix(m, "gpt-4.1"), strings.HasPrefix(m, "gpt-4.5"),
		strings.HasPrefix(m, "gpt-5"), strings.HasPrefix(m, "o1"), strings.HasPrefix(m, "o3"),
		strings.HasPrefix(m, "o4"), strings.HasPrefix(m, "gpt-image"), strings.HasPrefix(m, "chatgpt"):
		return tiktoken.MODEL_O200K_BASE
	case strings.HasPrefix(m, "gpt-4"), strings.HasPrefix(m, "gpt-3.5"), strings.HasPrefix(m, "text-embedding"):
		return tiktoken.MODEL_CL100K_BASE
	}
	return tiktoken.MODEL_O200K_BASE
}

func encoder(name string) *tiktoken.Tiktoken {
	loaderOnce.Do(func() { tiktoken.SetBpeLoader(tiktoken_loader.NewOfflineLoader()) })
	encMu.Lock()
	defer encMu.Unlock()
	if e, ok := encoders[name]; ok {
		return e
	}
	e, err := tiktoken.GetEncoding(name)
	if err != nil {
		encoders[name] = nil
		return nil
	}
	encoders[name] = e
	return e
}

// CountTokens counts the tokens of text as model's tokenizer would. For very
// long text, or if the tokenizer cannot load, it returns the byte length,
// which is an upper bound.
func CountTokens(model, text string) int64 {
	if text == "" {
		return 0
	}
	if len(text) > exactLimit {
		return int64(len(text))
	}
	e := encoder(encodingFor(model))
	if e == nil {
		return int64(len(text))
	}
	return int64(len(e.EncodeOrdinary(text)))
}
