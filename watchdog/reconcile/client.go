package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keycap/keycap/watchdog/problem"
)

// DefaultBaseURL is the API the Client reads when none is given.
const DefaultBaseURL = "https://api.openai.com/v1"

// Kind names one of the organization usage endpoints keycap reads.
type Kind string

// The usage endpoints, by the last part of their path.
const (
	Completions         Kind = "completions"
	Embeddings          Kind = "embeddings"
	Images              Kind = "images"
	AudioSpeeches       Kind = "audio_speeches"
	AudioTranscriptions Kind = "audio_transcriptions"
)

// Kinds lists the usage endpoints a sync reads.
var Kinds = []Kind{Completions, Embeddings, Images, AudioSpeeches, AudioTranscriptions}

// GroupBy returns what keycap groups each endpoint's usage by: enough to
// price it (model, and for images size and source; batch and service tier
// for completions) and to say where it came from (API key and project).
// Each endpoint accepts only some fields, per the OpenAPI description.
func GroupBy(k Kind) []string {
	g := []string{"project_id", "api_key_id", "model"}
	switch k {
	case Completions:
		g = append(g, "batch", "service_tier")
	case Images:
		g = append(g, "size", "source")
	}
	return g
}

// Client reads OpenAI's organization Usage and Costs APIs with an admin
// key. It follows pagination and retries rate limits and server errors,
// honouring Retry-After. The zero value reads the real API with no key.
type Client struct {
	// BaseURL is the API root, "https://api.openai.com/v1" when empty.
	BaseURL string
	// Key returns the admin key; it is called for every request so a key
	// added or removed while keycap runs takes effect.
	Key func() (string, error)
	// HTTP sends the requests (default: a client with a 30 s timeout).
	HTTP *http.Client
	// Sleep waits between retries (default: a timer that stops early when
	// ctx ends). Tests record the waits instead.
	Sleep func(ctx context.Context, d time.Duration) error
	// Retries is how many times a request is tried again after a 429, a
	// 5xx or a network error (default 4; negative for none).
	Retries int
	// MaxWait bounds one wait, whatever Retry-After says (default 2 min).
	MaxWait time.Duration
	// Now is the clock, for Retry-After given as a date (default time.Now).
	Now func() time.Time
	// Logger receives diagnostics (default: discard). Keys are never logged.
	Logger *slog.Logger
}

// Query selects buckets of usage or costs.
type Query struct {
	// Start is inclusive, End exclusive; a zero End means now.
	Start, End time.Time
	// Width is the bucket width: "1m", "1h" or "1d" (costs: only "1d").
	Width string
	// GroupBy lists the fields to group results by.
	GroupBy []string
}

// Bucket is one time bucket of a usage or costs answer.
type Bucket struct {
	Start   time.Time
	End     time.Time
	Results []Result
}

// UnmarshalJSON reads a bucket object, whose times are Unix seconds.
func (b *Bucket) UnmarshalJSON(data []byte) error {
	var raw struct {
		Object    string   `json:"object"`
		StartTime int64    `json:"start_time"`
		EndTime   int64    `json:"end_time"`
		Results   []Result `json:"results"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	if raw.Object != "bucket" {
		return fmt.Errorf("expected a bucket object, got %q", raw.Object)
	}
	b.Start, b.End, b.Results = time.Unix(raw.StartTime, 0), time.Unix(raw.EndTime, 0), raw.Results
	return nil
}

// Result is one result of a bucket: the fields of every result type keycap
// reads (completions, embeddings, images, audio speeches and
// transcriptions usage, and costs). Fields the answer leaves out or null
// stay zero.
type Result struct {
	Object            string  `json:"object"`
	InputTokens       int64   `json:"input_tokens"`
	InputCachedTokens int64   `json:"input_cached_tokens"`
	InputAudioTokens  int64   `json:"input_audio_tokens"`
	InputImageTokens  int64   `json:"input_image_tokens"`
	OutputTokens      int64   `json:"output_tokens"`
	OutputAudioTokens int64   `json:"output_audio_tokens"`
	OutputImageTokens int64   `json:"output_image_tokens"`
	Requests          int64   `json:"num_model_requests"`
	Characters        int64   `json:"characters"`
	Seconds           float64 `json:"seconds"`
	Images            int64   `json:"images"`
	Size              string  `json:"size"`
	Source            string  `json:"source"`
	ProjectID         string  `json:"project_id"`
	UserID            string  `json:"user_id"`
	APIKeyID          string  `json:"api_key_id"`
	Model             string  `json:"model"`
	Batch             bool    `json:"batch"`
	ServiceTier       string  `json:"service_tier"`
	Amount            Amount  `json:"amount"`
	LineItem          string  `json:"line_item"`
}

// Amount is a costs result's amount.
type Amount struct {
	Value    float64
	Currency string
}

// UnmarshalJSON reads {"value": 0.06, "currency": "usd"}; the value may
// also come as a string of digits.
func (a *Amount) UnmarshalJSON(data []byte) error {
	var raw struct {
		Value    json.RawMessage `json:"value"`
		Currency string          `json:"currency"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	a.Currency = raw.Currency
	v := strings.Trim(string(raw.Value), `"`)
	if v == "" || v == "null" {
		a.Value = 0
		return nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return fmt.Errorf("amount %s is not a number", raw.Value)
	}
	a.Value = f
	return nil
}

// page is the list object every usage and costs answer is.
type page struct {
	Object   string   `json:"object"`
	Data     []Bucket `json:"data"`
	HasMore  bool     `json:"has_more"`
	NextPage *string  `json:"next_page"`
}

// maxPages stops a pagination that never ends (a server that keeps
// answering has_more with the same cursor).
const maxPages = 200

// Usage returns the usage buckets of one endpoint, all pages of them.
func (c *Client) Usage(ctx context.Context, k Kind, q Query) ([]Bucket, error) {
	return c.buckets(ctx, "/organization/usage/"+string(k), q)
}

// Costs returns the costs buckets (UTC days), all pages of them.
func (c *Client) Costs(ctx context.Context, q Query) ([]Bucket, error) {
	q.Width = "1d"
	return c.buckets(ctx, "/organization/costs", q)
}

// pageLimit is the most buckets a page may hold for a width.
func pageLimit(path, width string) int {
	switch {
	case strings.HasSuffix(path, "/costs"):
		return 180
	case width == "1m":
		return 1440
	case width == "1h":
		return 168
	}
	return 31
}

func (c *Client) buckets(ctx context.Context, path string, q Query) ([]Bucket, error) {
	if q.Width == "" {
		q.Width = "1d"
	}
	params := url.Values{}
	params.Set("start_time", strconv.FormatInt(q.Start.Unix(), 10))
	if !q.End.IsZero() {
		params.Set("end_time", strconv.FormatInt(q.End.Unix(), 10))
	}
	params.Set("bucket_width", q.Width)
	params.Set("limit", strconv.Itoa(pageLimit(path, q.Width)))
	// Arrays go as name[]=a&name[]=b, as the official SDKs send them.
	for _, g := range q.GroupBy {
		params.Add("group_by[]", g)
	}
	var out []Bucket
	for n := 0; ; n++ {
		body, err := c.get(ctx, path, params)
		if err != nil {
			return nil, err
		}
		var p page
		if err := json.Unmarshal(body, &p); err != nil || p.Object != "page" {
			if err == nil {
				err = fmt.Errorf("object %q is not a page", p.Object)
			}
			return nil, &problem.Error{Code: problem.Upstream, Err: err,
				Message: "OpenAI's usage API sent an answer keycap cannot read (" + path + ")"}
		}
		out = append(out, p.Data...)
		if !p.HasMore || p.NextPage == nil || *p.NextPage == "" {
			return out, nil
		}
		if n+1 >= maxPages || *p.NextPage == params.Get("page") {
			return nil, problem.Errorf(problem.Upstream, "OpenAI's usage API kept saying there was more to read (%s); keycap stopped after %d pages", path, n+1)
		}
		params.Set("page", *p.NextPage)
	}
}

// offPrefix starts the admin-key message; Summary rewords it.
const offPrefix = "reconciliation with OpenAI's usage "

// AdminKeyHelp is how to add an admin key, for messages.
const AdminKeyHelp = "create one in the OpenAI dashboard (Organization settings → Admin keys) and add it with `keycap key set --admin`"

// NeedsAdminKey returns the error for a missing or refused admin key: one
// sentence saying that reconciliation needs an admin key and how to add it.
func NeedsAdminKey(why string) *problem.Error {
	return &problem.Error{Code: problem.Forbidden,
		Message: offPrefix + "needs an organization admin key (" + why + "): " + AdminKeyHelp}
}

// IsNeedsAdminKey reports whether err says an admin key is missing or
// was refused, which no retry fixes.
func IsNeedsAdminKey(err error) bool {
	var pe *problem.Error
	return errors.As(err, &pe) && pe.Code == problem.Forbidden && strings.Contains(pe.Message, "admin key")
}

func (c *Client) key() (string, error) {
	if c.Key == nil {
		return "", NeedsAdminKey("none is stored")
	}
	k, err := c.Key()
	k = strings.TrimSpace(k)
	switch {
	case err != nil || k == "":
		return "", NeedsAdminKey("none is stored")
	case !strings.HasPrefix(k, "sk-admin-"):
		return "", NeedsAdminKey("the key given is an API key, and only admin keys, which start with sk-admin-, may read the organization's usage")
	}
	return k, nil
}

func (c *Client) log() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// get sends one GET, retrying what a retry can fix, and returns the body of
// the 200 answer.
func (c *Client) get(ctx context.Context, path string, params url.Values) ([]byte, error) {
	key, err := c.key()
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(c.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	u := base + path + "?" + params.Encode()
	retries := c.Retries
	if retries == 0 {
		retries = 4
	}
	for attempt := 0; ; attempt++ {
		body, resp, err := c.once(ctx, u, key)
		if err == nil && resp.StatusCode == http.StatusOK {
			return body, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var fail error
		retryable := true
		if err != nil {
			fail = problem.Errorf(problem.Upstream, "could not reach OpenAI's usage API (%s)", problem.NetReason(err))
		} else {
			fail, retryable = statusError(resp.StatusCode, body, path)
		}
		if !retryable || attempt >= retries {
			return nil, fail
		}
		wait := backoff(attempt)
		if err == nil {
			if d, ok := retryAfter(resp.Header, c.now()); ok {
				wait = d
			}
		}
		maxWait := c.MaxWait
		if maxWait <= 0 {
			maxWait = 2 * time.Minute
		}
		wait = min(wait, maxWait)
		c.log().Debug("organization API: retrying", "path", path, "attempt", attempt+1, "wait", wait, "err", fail)
		if err := c.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

func (c *Client) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) once(ctx context.Context, u, key string) ([]byte, *http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, nil, err
	}
	return body, resp, nil
}

// statusError turns a non-200 answer into an error, and says whether
// trying again may help.
func statusError(status int, body []byte, path string) (error, bool) {
	var eb struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	json.Unmarshal(body, &eb)
	msg := strings.TrimSpace(eb.Error.Message)
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		why := "OpenAI refused the admin key"
		if strings.Contains(msg, "insufficient permissions") || strings.Contains(msg, "Missing scopes") {
			why = "OpenAI says the key has insufficient permissions to read usage"
		} else if strings.Contains(msg, "Incorrect API key") {
			why = "OpenAI does not know the admin key; it may have been revoked"
		}
		return NeedsAdminKey(why), false
	case status == http.StatusTooManyRequests:
		return problem.Errorf(problem.Upstream, "OpenAI's usage API is rate limiting keycap; it will try again"), true
	case status >= 500:
		return problem.Errorf(problem.Upstream, "OpenAI's usage API failed (HTTP %d); keycap will try again", status), true
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return problem.Errorf(problem.Upstream, "OpenAI's usage API refused keycap's request to %s (HTTP %d: %s)", path, status, msg), false
}

// backoff is the wait before retry n+1 when the server names none: 1 s,
// 2 s, 4 s, … up to a minute.
func backoff(n int) time.Duration {
	d := time.Second << min(n, 6)
	return min(d, time.Minute)
}

// retryAfter reads Retry-After (seconds or an HTTP date) or OpenAI's
// retry-after-ms.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if ms := h.Get("Retry-After-Ms"); ms != "" {
		if v, err := strconv.ParseFloat(ms, 64); err == nil && v >= 0 {
			return time.Duration(v * float64(time.Millisecond)), true
		}
	}
	ra := strings.TrimSpace(h.Get("Retry-After"))
	if ra == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(ra, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second)), true
	}
	if t, err := http.ParseTime(ra); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
