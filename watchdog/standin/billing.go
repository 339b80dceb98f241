package standin

import (
	"fmt"
	"strconv"
	"strings"
)

// Charge is what one answered request would have cost on the real API.
type Charge struct {
	Endpoint string // as in Record
	Model    string
	Units    Units
	// PriceKey is the Options.Prices entry the charge was priced with; it is
	// empty when there was none, and USD is then 0.
	PriceKey string
	USD      float64
}

// Units are the quantities the real API bills a request by. Token counts
// include their parts: InputTokens includes CachedTokens, ImageTokens and
// AudioTokens, and OutputTokens includes ReasoningTokens.
type Units struct {
	InputTokens     int
	CachedTokens    int // served from the prompt cache
	ImageTokens     int // input images of GPT image edits
	AudioTokens     int // input audio of gpt-4o transcription models
	OutputTokens    int // text; image tokens for GPT image models; audio tokens for gpt-4o-mini-tts
	ReasoningTokens int
	Characters      int     // input characters of tts-1 and tts-1-hd
	Seconds         float64 // input audio of whisper-1, rounded up to whole seconds
	Images          int
	Size            string // e.g. "1024x1024"
	Quality         string // "standard" or "hd" for DALL-E 3; "low", "medium" or "high" for GPT image models
}

// Charges returns the charge of every answered billable request since New or
// Reset, in the order they were answered. Free requests (moderations) appear
// with USD 0; model listings and errors do not appear.
func (s *Server) Charges() []Charge {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Charge(nil), s.charges...)
}

// Bill returns the USD the real API would have billed for everything answered
// since New or Reset.
func (s *Server) Bill() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var usd float64
	for _, c := range s.charges {
		usd += c.USD
	}
	return usd
}

// bill prices and records a charge, returning its index for rebill.
func (s *Server) bill(endpoint, model string, u Units) int {
	c := Charge{Endpoint: endpoint, Model: model, Units: u}
	c.PriceKey, c.USD = price(s.opts.Prices, endpoint, model, u)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.charges = append(s.charges, c)
	return len(s.charges) - 1
}

// rebill replaces the units of the charge at index i, for streams cut short.
func (s *Server) rebill(i int, u Units) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= len(s.charges) { // Reset in between
		return
	}
	c := &s.charges[i]
	key, usd := price(s.opts.Prices, c.Endpoint, c.Model, u)
	c.Units, c.PriceKey, c.USD = u, key, usd
}

// price looks up the entry for model (for DALL-E, for its quality and size)
// and applies it to u. Cached tokens fall back to the input price, audio
// tokens to the text price, when the entry has no price of their own.
func price(prices map[string]map[string]any, endpoint, model string, u Units) (string, float64) {
	key := model
	w, h := dimensions(u.Size)
	switch model {
	case "dall-e-2":
		key = fmt.Sprintf("%d-x-%d/dall-e-2", w, h)
	case "dall-e-3":
		key = fmt.Sprintf("%s/%d-x-%d/dall-e-3", u.Quality, w, h)
	}
	e, ok := prices[key]
	if !ok {
		return "", 0
	}
	rate := func(fields ...string) float64 {
		for _, f := range fields {
			switch v := e[f].(type) {
			case float64:
				return v
			case int:
				return float64(v)
			}
		}
		return 0
	}
	output := rate("output_cost_per_token")
	switch {
	case strings.HasPrefix(endpoint, "images/"):
		output = rate("output_cost_per_image_token")
	case endpoint == "audio/speech":
		output = rate("output_cost_per_audio_token", "output_cost_per_token")
	}
	text := u.InputTokens - u.CachedTokens - u.ImageTokens - u.AudioTokens
	return key, float64(text)*rate("input_cost_per_token") +
		float64(u.CachedTokens)*rate("cache_read_input_token_cost", "input_cost_per_token") +
		float64(u.ImageTokens)*rate("input_cost_per_image_token") +
		float64(u.AudioTokens)*rate("input_cost_per_audio_token", "input_cost_per_token") +
		float64(u.OutputTokens)*output +
		float64(u.Characters)*rate("input_cost_per_character") +
		u.Seconds*rate("input_cost_per_second") +
		float64(u.Images*w*h)*rate("input_cost_per_pixel")
}

// dimensions parses a size such as "1792x1024"; it returns zeros for anything else.
func dimensions(size string) (w, h int) {
	ws, hs, _ := strings.Cut(size, "x")
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if err1 != nil || err2 != nil {
		return 0, 0
	}
	return w, h
}
