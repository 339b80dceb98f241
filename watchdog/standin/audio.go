package standin

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

const (
	// speechCharsPerSecond is how fast the stand-in voices read.
	speechCharsPerSecond = 15
	// maxClipSeconds caps the silence returned for speech: the bill follows
	// the text, but the audio stays small.
	maxClipSeconds = 1.0
	// Audio tokens per second: gpt-4o-mini-tts output (about $0.015 a
	// minute at $12 per million) and gpt-4o transcription input (about
	// $0.006 a minute at $6 per million).
	speechTokensPerSecond     = 1250.0 / 60
	transcribeTokensPerSecond = 1000.0 / 60
	// unknownBytesPerSecond turns the size of an audio file that is not a WAV
	// into a duration, as if it were a 128 kbit/s MP3.
	unknownBytesPerSecond = 16000
	transcriptText        = "This is a stand-in transcript from keycap."
	maxSpeechInput        = 4096
)

func (s *Server) speech(x *exchange) {
	var req struct {
		Model          string          `json:"model"`
		Input          *string         `json:"input"`
		Instructions   string          `json:"instructions"`
		Voice          json.RawMessage `json:"voice"`
		ResponseFormat string          `json:"response_format"`
		Speed          *float64        `json:"speed"`
		StreamFormat   string          `json:"stream_format"`
	}
	if !x.decode(&req) {
		return
	}
	x.note(req.Model, req.StreamFormat == "sse")
	format := cmp.Or(req.ResponseFormat, "mp3")
	speed := valueOr(req.Speed, 1)
	tts1 := strings.HasPrefix(req.Model, "tts-1")
	switch {
	case req.Model == "":
		x.missing("model")
	case req.Input == nil:
		x.missing("input")
	case len(req.Voice) == 0 || string(req.Voice) == "null":
		x.missing("voice")
	case *req.Input == "":
		x.invalid("input", "string_below_min_length", "Invalid 'input': string too short. Expected a string with minimum length 1, but got an empty string instead.")
	case utf8.RuneCountInString(*req.Input) > maxSpeechInput:
		x.invalid("input", "string_above_max_length", "Invalid 'input': string too long. Expected a string with maximum length %d, but got a string with length %d instead.", maxSpeechInput, utf8.RuneCountInString(*req.Input))
	case audioTypes[format] == "":
		x.invalid("response_format", "invalid_value", "Invalid value: '%s'. Supported values are: 'mp3', 'opus', 'aac', 'flac', 'wav', and 'pcm'.", format)
	case speed < 0.25 || speed > 4:
		x.invalid("speed", "invalid_value", "Invalid 'speed': expected a value between 0.25 and 4, but got %g instead.", speed)
	case req.StreamFormat != "" && req.StreamFormat != "audio" && (req.StreamFormat != "sse" || tts1):
		x.invalid("stream_format", "unsupported_value", "Unsupported value: 'stream_format' does not support '%s' with this model.", req.StreamFormat)
	default:
		chars := utf8.RuneCountInString(*req.Input)
		seconds := float64(chars) / speechCharsPerSecond / speed
		audio := silence(format, min(seconds, maxClipSeconds))
		u := Units{Characters: chars}
		if !tts1 {
			u = Units{InputTokens: countTokens(req.Model, *req.Input+req.Instructions), OutputTokens: int(math.Ceil(seconds * speechTokensPerSecond))}
		}
		if req.StreamFormat != "sse" {
			x.reply(audioTypes[format], audio, &u)
			return
		}
		x.stream([]event{
			newEvent("", obj{"type": "speech.audio.delta", "audio": base64.StdEncoding.EncodeToString(audio)}, u.OutputTokens),
			newEvent("", obj{"type": "speech.audio.done", "usage": obj{"input_tokens": u.InputTokens, "output_tokens": u.OutputTokens,
				"total_tokens": u.InputTokens + u.OutputTokens}}, u.OutputTokens),
		}, func(int) Units { return u })
	}
}

// transcribe answers transcriptions and, with translate, translations. The
// audio's duration comes from its header when it is a WAV file, and from its
// size otherwise (see unknownBytesPerSecond).
func (s *Server) transcribe(x *exchange, translate bool) {
	if err := x.r.ParseMultipartForm(maxBody); err != nil {
		x.bodyError(err)
		return
	}
	model := x.r.FormValue("model")
	x.note(model, false)
	file, _, err := x.r.FormFile("file")
	if err != nil {
		x.missing("file")
		return
	}
	defer file.Close()
	data, err := io.ReadAll(file)
	if err != nil {
		x.bodyError(err)
		return
	}
	format := cmp.Or(x.r.FormValue("response_format"), "json")
	whisper := strings.HasPrefix(model, "whisper")
	seconds, ok := wavSeconds(data)
	if !ok {
		seconds = float64(len(data)) / unknownBytesPerSecond
	}
	switch {
	case model == "":
		x.missing("model")
		return
	case !slices.Contains([]string{"json", "text", "srt", "verbose_json", "vtt"}, format):
		x.invalid("response_format", "invalid_value", "Invalid value: '%s'. Supported values are: 'json', 'text', 'srt', 'verbose_json', and 'vtt'.", format)
		return
	case !whisper && format != "json" && format != "text":
		x.invalid("response_format", "unsupported_value", "response_format '%s' is not compatible with model '%s'. Use 'json' or 'text' instead.", format, model)
		return
	case seconds < 0.1:
		x.invalid("file", "audio_too_short", "Audio file is too short. Minimum audio length is 0.1 seconds.")
		return
	}
	var u Units
	var usage obj
	if whisper {
		u.Seconds = math.Ceil(seconds)
		usage = obj{"type": "duration", "seconds": u.Seconds}
	} else {
		audio, text := int(math.Ceil(seconds*transcribeTokensPerSecond)), countTokens(model, x.r.FormValue("prompt"))
		u = Units{InputTokens: audio + text, AudioTokens: audio, OutputTokens: countTokens(model, transcriptText)}
		usage = obj{"type": "tokens", "input_tokens": u.InputTokens, "output_tokens": u.OutputTokens, "total_tokens": u.InputTokens + u.OutputTokens,
			"input_token_details": obj{"text_tokens": text, "audio_tokens": audio}}
	}
	task := "transcribe"
	if translate {
		task, usage = "translate", nil // translations report no usage
	}
	body := obj{"text": transcriptText}
	switch format {
	case "text":
		x.reply("text/plain; charset=utf-8", []byte(transcriptText+"\n"), &u)
		return
	case "srt":
		x.reply("text/plain; charset=utf-8", fmt.Appendf(nil, "1\n%s --> %s\n%s\n\n", timestamp(0, ","), timestamp(seconds, ","), transcriptText), &u)
		return
	case "vtt":
		x.reply("text/vtt; charset=utf-8", fmt.Appendf(nil, "WEBVTT\n\n%s --> %s\n%s\n\n", timestamp(0, "."), timestamp(seconds, "."), transcriptText), &u)
		return
	case "verbose_json":
		body = obj{"task": task, "language": "english", "duration": seconds, "text": transcriptText,
			"segments": []obj{{"id": 0, "seek": 0, "start": 0.0, "end": seconds, "text": " " + transcriptText,
				"tokens": encoding(model).EncodeOrdinary(" " + transcriptText), "temperature": 0.0,
				"avg_logprob": -0.2, "compression_ratio": 1.0, "no_speech_prob": 0.01}}}
	}
	if usage != nil {
		body["usage"] = usage
	}
	x.json(body, &u)
}

// timestamp formats seconds as an SRT (sep ",") or WebVTT (sep ".") time.
func timestamp(seconds float64, sep string) string {
	ms := int(math.Round(seconds * 1000))
	return fmt.Sprintf("%02d:%02d:%02d%s%03d", ms/3600000, ms/60000%60, ms/1000%60, sep, ms%1000)
}
