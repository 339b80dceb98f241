package pricing

import (
	"testing"

	"github.com/keycap/keycap/watchdog/money"
)

func MustLoad(tb testing.TB, overrides map[string]Price, fallback *Price) *Table {
	tb.Helper()
	t, err := Load(overrides, fallback)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func TestLookupResolvesNames(t *testing.T) {
	tab := MustLoad(t, nil, nil)
	for _, tt := range []struct {
		in, want string
	}{
		{"gpt-4o-mini", "gpt-4o-mini"},
		{"gpt-4o-2024-08-06", "gpt-4o-2024-08-06"},
		{"gpt-4o-2099-01-01", "gpt-4o"},
		{"openai/gpt-4o-mini", "gpt-4o-mini"},
		{"gpt-4-0125", "gpt-4"},
		{"tts-1", "tts-1"},
	} {
		_, got, ok := tab.Lookup(tt.in)
		if !ok || got != tt.want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
	if _, _, ok := tab.Lookup("no-such-model"); ok {
		t.Errorf("Lookup(no-such-model) found a price")
	}
}

func TestFallbackAndOverride(t *testing.T) {
	fb := Price{InputPerToken: 1e-5, OutputPerToken: 1e-4}
	tab := MustLoad(t, map[string]Price{"my-model": {InputPerToken: 2e-6}, "gpt-4o-mini": {InputPerToken: 1e-6}}, &fb)
	p, name, ok := tab.Lookup("my-model")
	if !ok || name != "my-model" || p.InputPerToken != 2e-6 || tab.Source(name) != "config" {
		t.Errorf("override: %v %q %v", p, name, ok)
	}
	if p, _, _ := tab.Lookup("gpt-4o-mini"); p.InputPerToken != 1e-6 {
		t.Errorf("override of a LiteLLM card not applied: %v", p.InputPerToken)
	}
	if _, name, ok := tab.Lookup("unknown-thing"); !ok || name != "fallback" {
		t.Errorf("fallback: %q %v", name, ok)
	}
}

func TestTokenCost(t *testing.T) {
	tab := MustLoad(t, nil, nil)
	mini, _, _ := tab.Lookup("gpt-4o-mini")
	o1, _, _ := tab.Lookup("o1")
	for _, tt := range []struct {
		name string
		p    Price
		u    Tokens
		tier Tier
		want money.USD
	}{
		// 1000 in × $0.15/M + 500 out × $0.60/M = $0.00015 + $0.0003
		{"plain", mini, Tokens{Input: 1000, Output: 500}, TierDefault, 450},
		// 1000 cached of 2000: 1000×0.15 + 1000×0.075 = 225 µ$
		{"cached", mini, Tokens{Input: 2000, Cached: 1000}, TierDefault, 225},
		// reasoning is inside output at the output price: 100 in×15 + 1000 out×60
		{"reasoning", o1, Tokens{Input: 100, Output: 1000, Reasoning: 800}, TierDefault, 1500 + 60000},
		// priority: 1000 in × $0.25/M
		{"priority", mini, Tokens{Input: 1000}, TierPriority, 250},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.TokenCost(tt.u, tt.tier); got != tt.want {
				t.Errorf("TokenCost = %d µ$, want %d", got, tt.want)
			}
		})
	}
}

func TestAudioCosts(t *testing.T) {
	tab := MustLoad(t, nil, nil)
	tts, _, _ := tab.Lookup("tts-1")
	if got, want := tts.CharacterCost(4096), money.USD(61_440); got != want {
		t.Errorf("tts-1 4096 chars = %d, want %d", got, want)
	}
	hd, _, _ := tab.Lookup("tts-1-hd")
	if got, want := hd.CharacterCost(1000), money.USD(30_000); got != want {
		t.Errorf("tts-1-hd 1000 chars = %d, want %d", got, want)
	}
	w, _, _ := tab.Lookup("whisper-1")
	if got, want := w.SecondCost(60), money.USD(6_000); got != want {
		t.Errorf("whisper 60s = %d, want %d", got, want)
	}
}

func TestImageCost(t *testing.T) {
	tab := MustLoad(t, nil, nil)
	for _, tt := range []struct {
		model, size, quality string
		n                    int64
		wantCard             string
		min, max             money.USD
	}{
		{"dall-e-3", "1024x1024", "standard", 1, "standard/1024-x-1024/dall-e-3", 39_990, 40_010},
		{"dall-e-3", "", "", 1, "standard/1024-x-1024/dall-e-3", 39_990, 40_010},
		{"dall-e-3", "1792x1024", "hd", 1, "hd/1792-x-1024/dall-e-3", 119_990, 120_010},
		{"dall-e-2", "256x256", "", 2, "256-x-256/dall-e-2", 31_990, 32_010},
		{"gpt-image-1", "1024x1536", "high", 1, "high/1024-x-1536/gpt-image-1", 249_990, 250_010},
		{"gpt-image-1", "auto", "auto", 1, "", 249_990, 250_010},
	} {
		got, card, ok := tab.ImageCost(tt.model, tt.size, tt.quality, tt.n)
		if !ok || got < tt.min || got > tt.max || (tt.wantCard != "" && card != tt.wantCard) {
			t.Errorf("ImageCost(%s,%s,%s,%d) = %d via %q (%v), want %d..%d via %q", tt.model, tt.size, tt.quality, tt.n, got, card, ok, tt.min, tt.max, tt.wantCard)
		}
	}
	if _, _, ok := tab.ImageCost("gpt-4o", "1024x1024", "", 1); ok {
		t.Errorf("gpt-4o has no image card")
	}
}
