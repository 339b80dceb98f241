// Package problem is keycap's one coded error type. The engine returns
// *Error values; the edges turn them into an OpenAI-shaped JSON body with an
// HTTP status (the proxy and control socket), or into a sentence (the CLI and
// the UI). Only internal errors carry detail that is logged, never shown.
package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// Codes keycap answers with. The proxy's refusals use them as the OpenAI
// error "code", so scripts can tell keycap's refusals from OpenAI's.
const (
	Invalid            = "invalid_request"
	BodyTooLarge       = "request_too_large"
	InvalidToken       = "invalid_token"
	TokenExpired       = "token_expired"
	Forbidden          = "forbidden"
	NotFound           = "not_found"
	DailyCapReached    = "daily_cap_reached"
	TokenBudgetReached = "token_budget_reached"
	Paused             = "paused"
	LoopBlocked        = "loop_blocked"
	UnknownPrice       = "unknown_price"
	LedgerUnavailable  = "ledger_unavailable"
	NoKey              = "no_api_key"
	Upstream           = "upstream_unavailable"
	Internal           = "internal"
)

// Error is an error with a code and a message meant for the person who made
// the request. Param names the request field at fault, if any.
type Error struct {
	Code    string
	Message string
	Param   string
	// Err is the cause, for logs only; it is never shown to a client.
	Err error
}

// Error returns the message.
func (e *Error) Error() string {
	if e.Code == Internal && e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an internal error whose public message is msg and whose cause
// err is kept for the log.
func Wrap(err error, msg string) *Error {
	return &Error{Code: Internal, Message: msg, Err: err}
}

// CodeOf returns the code of err, Internal for errors that are not *Error,
// and "" for nil.
func CodeOf(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// MessageOf returns the message a person may see for err: the message of an
// *Error, and a fixed sentence for anything else, whose text may hold
// details that must not leak.
func MessageOf(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "keycap: internal error; run keycap with --debug and see its log"
}

// Status maps a code to an HTTP status.
func Status(code string) int {
	switch code {
	case Invalid, UnknownPrice:
		return http.StatusBadRequest
	case BodyTooLarge:
		return http.StatusRequestEntityTooLarge
	case InvalidToken, TokenExpired:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case NotFound:
		return http.StatusNotFound
	case DailyCapReached, TokenBudgetReached, Paused, LoopBlocked:
		return http.StatusTooManyRequests
	case LedgerUnavailable, NoKey:
		return http.StatusServiceUnavailable
	case Upstream:
		return http.StatusBadGateway
	default:
		return http.StatusInternalServerError
	}
}

// openAIType maps a code to the OpenAI error "type" SDKs display.
func openAIType(code string) string {
	switch code {
	case DailyCapReached, TokenBudgetReached, Paused, LoopBlocked:
		return "insufficient_quota"
	case Internal, LedgerUnavailable, Upstream, NoKey:
		return "server_error"
	default:
		return "invalid_request_error"
	}
}

// Body is the OpenAI error envelope.
type Body struct {
	Error BodyError `json:"error"`
}

// BodyError is the inside of the OpenAI error envelope.
type BodyError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// JSON returns the OpenAI-shaped body for err.
func JSON(err error) []byte {
	code := CodeOf(err)
	b := Body{Error: BodyError{Message: MessageOf(err), Type: openAIType(code), Code: code}}
	var e *Error
	if errors.As(err, &e) && e.Param != "" {
		p := e.Param
		b.Error.Param = &p
	}
	out, _ := json.Marshal(b)
	return out
}

// Write sends err as an OpenAI-shaped error response. Refusals that a retry
// cannot fix carry x-should-retry: false, which the official SDKs obey.
func Write(w http.ResponseWriter, err error) {
	code := CodeOf(err)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Keycap-Refusal", code)
	if code != Upstream && code != Internal {
		h.Set("X-Should-Retry", "false")
	}
	w.WriteHeader(Status(code))
	w.Write(append(JSON(err), '\n'))
}

// NetReason names a network failure in a few words, without the addresses
// and details its error text carries.
func NetReason(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	case strings.Contains(err.Error(), "reset"):
		return "connection reset"
	case strings.Contains(err.Error(), "no such host"):
		return "unknown host"
	}
	return "connection failed"
}
