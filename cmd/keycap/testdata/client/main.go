// Command client is a small script for keycap's end-to-end test: it talks to
// OpenAI with go-openai, configured only by OPENAI_BASE_URL and
// OPENAI_API_KEY, as a user's script would.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	openai "github.com/sashabaranov/go-openai"
)

func main() {
	cfg := openai.DefaultConfig(os.Getenv("OPENAI_API_KEY"))
	cfg.BaseURL = os.Getenv("OPENAI_BASE_URL")
	c := openai.NewClientWithConfig(cfg)
	ctx := context.Background()
	r, err := c.CreateSpeech(ctx, openai.CreateSpeechRequest{Model: openai.TTSModel1, Voice: openai.VoiceAlloy, Input: "Welcome to FlightAI. London is $799."})
	if err != nil {
		var ae *openai.APIError
		if errors.As(err, &ae) {
			fmt.Printf("refused: %d %s: %s\n", ae.HTTPStatusCode, ae.Code, ae.Message)
		} else {
			fmt.Println("error:", err)
		}
		os.Exit(7)
	}
	n, _ := io.Copy(io.Discard, r)
	r.Close()
	resp, err := c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "gpt-4o-mini", MaxCompletionTokens: 20,
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "How much is a ticket to London?"}}})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(8)
	}
	fmt.Printf("speech %d bytes; chat %d tokens\n", n, resp.Usage.TotalTokens)
	if len(os.Args) > 1 {
		code, _ := strconv.Atoi(os.Args[1])
		os.Exit(code)
	}
}
