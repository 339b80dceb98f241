// Package keycheck asks the API whether an OpenAI API key works, with the
// one call that costs nothing (list models), and says the answer in words
// for the settings window.
package keycheck

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/keycap/keycap/watchdog/problem"
)

// Timeout bounds one check.
const Timeout = 20 * time.Second

// Result is the outcome of a check.
type Result struct {
	// OK is true when the API accepted the key.
	OK bool
	// Models is how many models the API listed for the key.
	Models int
	// Status is the HTTP status of a refusal, 0 when the API was not
	// reached.
	Status int
	// Message says the outcome in a sentence; it never holds the key.
	Message string
}

// Check lists the models upstream (an API base URL such as
// https://api.openai.com/v1) offers to key. client may be nil for
// http.DefaultClient's settings.
func Check(ctx context.Context, upstream, key string, client *http.Client) Result {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	cfg := openai.DefaultConfig(key)
	cfg.BaseURL = upstream
	if client != nil {
		cfg.HTTPClient = client
	}
	host := upstream
	if u, err := url.Parse(upstream); err == nil && u.Host != "" {
		host = u.Host
	}
	list, err := openai.NewClientWithConfig(cfg).ListModels(ctx)
	if err == nil {
		return Result{OK: true, Models: len(list.Models), Message: fmt.Sprintf("The key works: %s accepted it and lists %d models for it.", host, len(list.Models))}
	}
	var api *openai.APIError
	var req *openai.RequestError
	status := 0
	switch {
	case errors.As(err, &api):
		status = api.HTTPStatusCode
	case errors.As(err, &req):
		status = req.HTTPStatusCode
	}
	r := Result{Status: status}
	switch {
	case status == http.StatusUnauthorized:
		r.Message = fmt.Sprintf("%s refused this key (401): it is mistyped, revoked, or belongs to a deleted project. Copy it again from the OpenAI dashboard.", host)
	case status == http.StatusForbidden:
		r.Message = fmt.Sprintf("%s knows this key but would not list models with it (403): it may be restricted to some endpoints, or your region or organisation is not allowed. Requests may still work.", host)
	case status == http.StatusTooManyRequests:
		r.Message = fmt.Sprintf("%s accepted this key but refused for now (429): it is over a rate limit or out of credit. Check billing in the OpenAI dashboard.", host)
	case status == http.StatusNotFound:
		r.Message = fmt.Sprintf("%s has no models list at that address (404): check the upstream URL; it usually ends in /v1.", host)
	case status != 0:
		r.Message = fmt.Sprintf("%s answered with HTTP %d, so the key could not be checked. Try again in a minute.", host, status)
	case errors.Is(err, context.DeadlineExceeded):
		r.Message = fmt.Sprintf("%s did not answer within %s, so the key could not be checked. Is the network up?", host, Timeout)
	default:
		r.Message = fmt.Sprintf("Could not reach %s (%s), so the key could not be checked.", host, problem.NetReason(err))
	}
	return r
}
