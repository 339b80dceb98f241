// Command openaigo is a script for keycap's compatibility test: it drives the
// official openai-go SDK, unmodified and configured only by OPENAI_BASE_URL
// and OPENAI_API_KEY, through every kind of request keycap meters, and
// prints one JSON line per case for the test to check.
//
// It is a module of its own so that the main module does not depend on
// openai-go (and `go mod tidy`, which ignores testdata, cannot break it).
//
//	openaigo all      every endpoint, each expected to succeed
//	openaigo refuse   one chat request and one speech request, each expected
//	                  to be refused by keycap's cap
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
)

// result is one line of output.
type result struct {
	Case     string `json:"case"`
	OK       bool   `json:"ok"`
	Detail   string `json:"detail,omitempty"`
	Error    string `json:"error,omitempty"`
	Status   int    `json:"status,omitempty"`
	Code     string `json:"code,omitempty"`
	Message  string `json:"message,omitempty"`
	Attempts int64  `json:"attempts"`
}

// attempts counts the HTTP requests the SDK sends. The SDK keeps using
// http.DefaultTransport when it has been wrapped, so this observes its
// retries without configuring it.
var attempts atomic.Int64

type counting struct{ next http.RoundTripper }

func (c counting) RoundTrip(r *http.Request) (*http.Response, error) {
	attempts.Add(1)
	return c.next.RoundTrip(r)
}

func main() {
	http.DefaultTransport = counting{http.DefaultTransport}
	mode := "all"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	client := openai.NewClient() // OPENAI_API_KEY and OPENAI_BASE_URL
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cases := allCases
	if mode == "refuse" {
		cases = refuseCases
	}
	enc := json.NewEncoder(os.Stdout)
	failed := false
	for _, c := range cases {
		before := attempts.Load()
		detail, err := c.run(ctx, &client)
		r := result{Case: c.name, OK: err == nil, Detail: detail, Attempts: attempts.Load() - before}
		if err != nil {
			r.Error = err.Error()
			var ae *openai.Error
			if errors.As(err, &ae) {
				r.Status, r.Code, r.Message = ae.StatusCode, ae.Code, ae.Message
			}
			failed = true
		}
		enc.Encode(r)
	}
	if failed && mode == "all" {
		os.Exit(1)
	}
}

type testCase struct {
	name string
	run  func(context.Context, *openai.Client) (string, error)
}

var allCases = []testCase{
	{"chat", chat},
	{"chat_stream", chatStream},
	{"responses", response},
	{"responses_stream", responseStream},
	{"embeddings", embeddings},
	{"speech", speech},
	{"image", image},
	{"transcription", transcription},
}

var refuseCases = []testCase{{"chat", chat}, {"speech", speech}}

func chat(ctx context.Context, c *openai.Client) (string, error) {
	r, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:               "gpt-4o-mini",
		Messages:            []openai.ChatCompletionMessageParamUnion{openai.UserMessage("How much is a ticket to London?")},
		MaxCompletionTokens: openai.Int(20),
	})
	if err != nil {
		return "", err
	}
	if len(r.Choices) == 0 || r.Choices[0].Message.Content == "" || r.Usage.TotalTokens == 0 {
		return "", fmt.Errorf("empty completion: %+v", r)
	}
	return fmt.Sprintf("%d tokens: %s", r.Usage.TotalTokens, r.Choices[0].Message.Content), nil
}

func chatStream(ctx context.Context, c *openai.Client) (string, error) {
	s := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:               "gpt-4o-mini",
		Messages:            []openai.ChatCompletionMessageParamUnion{openai.UserMessage("How much is a ticket to Paris?")},
		MaxCompletionTokens: openai.Int(20),
	})
	defer s.Close()
	var text strings.Builder
	chunks := 0
	for s.Next() {
		ch := s.Current()
		chunks++
		if len(ch.Choices) == 0 {
			// keycap asks for usage to meter the stream; a client that did
			// not ask must not see the extra chunk.
			return "", fmt.Errorf("got a chunk without choices (usage %+v) the client did not ask for", ch.Usage)
		}
		text.WriteString(ch.Choices[0].Delta.Content)
	}
	if err := s.Err(); err != nil {
		return "", err
	}
	if text.Len() == 0 {
		return "", errors.New("the stream carried no text")
	}
	return fmt.Sprintf("%d chunks: %s", chunks, text.String()), nil
}

func response(ctx context.Context, c *openai.Client) (string, error) {
	r, err := c.Responses.New(ctx, responses.ResponseNewParams{
		Model:           "gpt-4o-mini",
		Input:           responses.ResponseNewParamsInputUnion{OfString: openai.String("Say hello.")},
		MaxOutputTokens: openai.Int(50),
	})
	if err != nil {
		return "", err
	}
	if r.OutputText() == "" || r.Usage.TotalTokens == 0 {
		return "", fmt.Errorf("empty response: %s", r.RawJSON())
	}
	return fmt.Sprintf("%d tokens: %s", r.Usage.TotalTokens, r.OutputText()), nil
}

func responseStream(ctx context.Context, c *openai.Client) (string, error) {
	s := c.Responses.NewStreaming(ctx, responses.ResponseNewParams{
		Model:           "gpt-4o-mini",
		Input:           responses.ResponseNewParamsInputUnion{OfString: openai.String("Say hello again.")},
		MaxOutputTokens: openai.Int(50),
	})
	defer s.Close()
	var text strings.Builder
	completed := false
	events := 0
	for s.Next() {
		ev := s.Current()
		events++
		switch ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta)
		case "response.completed":
			completed = true
		}
	}
	if err := s.Err(); err != nil {
		return "", err
	}
	if !completed || text.Len() == 0 {
		return "", fmt.Errorf("stream incomplete: completed=%v text=%q", completed, text.String())
	}
	return fmt.Sprintf("%d events: %s", events, text.String()), nil
}

func embeddings(ctx context.Context, c *openai.Client) (string, error) {
	r, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("London is $799.")},
	})
	if err != nil {
		return "", err
	}
	if len(r.Data) != 1 || len(r.Data[0].Embedding) == 0 {
		return "", fmt.Errorf("no embedding: %s", r.RawJSON())
	}
	return fmt.Sprintf("%d dimensions", len(r.Data[0].Embedding)), nil
}

func speech(ctx context.Context, c *openai.Client) (string, error) {
	r, err := c.Audio.Speech.New(ctx, openai.AudioSpeechNewParams{
		Model: openai.SpeechModelTTS1,
		Voice: openai.AudioSpeechNewParamsVoiceUnion{OfString: openai.String("alloy")},
		Input: "Welcome to FlightAI. A return ticket to London is $799.",
	})
	if err != nil {
		return "", err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return "", err
	}
	if len(b) == 0 {
		return "", errors.New("no audio")
	}
	return fmt.Sprintf("%d bytes of %s", len(b), r.Header.Get("Content-Type")), nil
}

func image(ctx context.Context, c *openai.Client) (string, error) {
	r, err := c.Images.Generate(ctx, openai.ImageGenerateParams{
		Model:          openai.ImageModelDallE3,
		Prompt:         "London at dusk, in the style of a travel poster",
		Size:           "1024x1024",
		ResponseFormat: "b64_json",
	})
	if err != nil {
		return "", err
	}
	if len(r.Data) != 1 {
		return "", fmt.Errorf("want one image: %s", r.RawJSON())
	}
	png, err := base64.StdEncoding.DecodeString(r.Data[0].B64JSON)
	if err != nil || len(png) < 24 || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		return "", fmt.Errorf("not a PNG (%v)", err)
	}
	w, h := binary.BigEndian.Uint32(png[16:]), binary.BigEndian.Uint32(png[20:])
	return fmt.Sprintf("PNG %dx%d", w, h), nil
}

func transcription(ctx context.Context, c *openai.Client) (string, error) {
	r, err := c.Audio.Transcriptions.New(ctx, openai.AudioTranscriptionNewParams{
		Model: openai.AudioModelWhisper1,
		File:  openai.File(bytes.NewReader(wav(2)), "question.wav", "audio/wav"),
	})
	if err != nil {
		return "", err
	}
	if r.Text == "" {
		return "", fmt.Errorf("no text: %s", r.RawJSON())
	}
	return r.Text, nil
}

// wav returns that many seconds of 16 kHz mono silence as a WAV file.
func wav(seconds int) []byte {
	const rate = 16000
	n := rate * 2 * seconds
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(uint32(36 + n))
	b.WriteString("WAVEfmt ")
	le(uint32(16))
	le(uint16(1))
	le(uint16(1))
	le(uint32(rate))
	le(uint32(rate * 2))
	le(uint16(2))
	le(uint16(16))
	b.WriteString("data")
	le(uint32(n))
	b.Write(make([]byte, n))
	return b.Bytes()
}
