package guard

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// name is how messages refer to a script: its label, quoted so that odd
// characters cannot break the one-line message.
func name(label string) string {
	if label == "" {
		return "an unlabelled script"
	}
	return strconv.Quote(label)
}

// nouns name endpoints the way a person would.
var nouns = map[string]string{
	"chat.completions":     "chat",
	"completions":          "completion",
	"responses":            "responses",
	"embeddings":           "embeddings",
	"audio.speech":         "speech",
	"audio.transcriptions": "transcription",
	"audio.translations":   "translation",
	"images.generations":   "image",
	"images.edits":         "image edit",
	"images.variations":    "image variation",
	"moderations":          "moderation",
}

// requestName describes a request: "tts-1 speech", "dall-e-3 image".
func requestName(endpoint, model string) string {
	noun := nouns[endpoint]
	if noun == "" {
		noun = endpoint
	}
	switch {
	case model != "" && noun != "":
		return model + " " + noun
	case model != "":
		return model
	case noun != "":
		return noun
	}
	return "API"
}

// human formats a duration for messages: "40 s", "4 min", "2 h 5 min".
func human(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", max(1, int(d.Round(time.Second)/time.Second)))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Round(time.Minute)/time.Minute))
	}
	d = d.Round(time.Minute)
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	if m == 0 {
		return fmt.Sprintf("%d h", h)
	}
	return fmt.Sprintf("%d h %d min", h, m)
}

// percent formats a fraction of the cap: "50%", "12.5%".
func percent(f float64) string {
	return strings.TrimSuffix(strconv.FormatFloat(f*100, 'f', 1, 64), ".0") + "%"
}
