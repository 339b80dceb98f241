package standin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/standin"
	openai "github.com/sashabaranov/go-openai"
)

const orgKey = "sk-admin-" + "STANDINADMINabcdefghijklmnopqrstuvwxyz0123456789"

// orgFixture is an Organization in front of a stand-in API, served over HTTP.
type orgFixture struct {
	api *standin.Server
	org *standin.Organization
	url string
	now time.Time
}

func mustStartOrg(t *testing.T, now time.Time) orgFixture {
	t.Helper()
	clock := func() time.Time { return now }
	api := standin.New(standin.Options{APIKey: testKey, Prices: mustPrices(t), Now: clock})
	org := standin.NewOrganization(api, standin.OrgOptions{AdminKey: orgKey})
	ts := httptest.NewServer(org)
	t.Cleanup(ts.Close)
	return orgFixture{api: api, org: org, url: ts.URL, now: now}
}

// get sends GET path?query with key and decodes the JSON answer.
func (f orgFixture) get(t *testing.T, key, path string, q url.Values) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("GET", f.url+path+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%s: body is not JSON: %s", path, b)
	}
	return resp.StatusCode, resp.Header, body
}

func query(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Add(kv[i], kv[i+1])
	}
	return q
}

func unix(t time.Time) string { return fmt.Sprint(t.Unix()) }

func TestOrganizationResultShapes(t *testing.T) {
	now := time.Date(2025, 4, 23, 12, 0, 0, 0, time.UTC)
	f := mustStartOrg(t, now)
	at := now.Add(-2 * time.Hour)
	f.org.AddUsage(
		standin.OrgUsage{At: at, Endpoint: "completions", Model: "gpt-4o-mini-2024-07-18", APIKeyID: "key_a", ProjectID: "proj_a",
			Units: standin.Units{InputTokens: 1000, CachedTokens: 200, OutputTokens: 50}, Requests: 2, USD: 0.1},
		standin.OrgUsage{At: at, Endpoint: "embeddings", Model: "text-embedding-3-small", APIKeyID: "key_a", Units: standin.Units{InputTokens: 16}},
		standin.OrgUsage{At: at, Endpoint: "images", Model: "dall-e-3", Units: standin.Units{Images: 2, Size: "1024x1024"}, Source: "image.generation", USD: 0.08},
		standin.OrgUsage{At: at, Endpoint: "audio_speeches", Model: "tts-1", Units: standin.Units{Characters: 45}, USD: 0.000675},
		standin.OrgUsage{At: at, Endpoint: "audio_transcriptions", Model: "whisper-1", Units: standin.Units{Seconds: 19.2}, USD: 0.002},
	)
	tests := []struct {
		path    string
		groupBy []string
		object  string
		want    map[string]any // fields of the one result
	}{
		{"/v1/organization/usage/completions", []string{"model", "api_key_id"}, "organization.usage.completions.result",
			map[string]any{"input_tokens": 1000.0, "input_cached_tokens": 200.0, "output_tokens": 50.0, "num_model_requests": 2.0,
				"model": "gpt-4o-mini-2024-07-18", "api_key_id": "key_a", "project_id": nil, "user_id": nil, "batch": nil, "service_tier": nil}},
		{"/v1/organization/usage/embeddings", nil, "organization.usage.embeddings.result",
			map[string]any{"input_tokens": 16.0, "num_model_requests": 1.0, "model": nil, "api_key_id": nil, "project_id": nil}},
		{"/v1/organization/usage/images", []string{"size", "source"}, "organization.usage.images.result",
			map[string]any{"images": 2.0, "size": "1024x1024", "source": "image.generation", "model": nil}},
		{"/v1/organization/usage/audio_speeches", []string{"model"}, "organization.usage.audio_speeches.result",
			map[string]any{"characters": 45.0, "model": "tts-1"}},
		{"/v1/organization/usage/audio_transcriptions", nil, "organization.usage.audio_transcriptions.result",
			map[string]any{"seconds": 20.0}},
		{"/v1/organization/costs", nil, "organization.costs.result",
			map[string]any{"amount": map[string]any{"value": 0.1 + 0.08 + 0.000675 + 0.002, "currency": "usd"}, "line_item": nil, "project_id": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			q := query("start_time", unix(now.Add(-24*time.Hour).Truncate(24*time.Hour)))
			for _, g := range tt.groupBy {
				q.Add("group_by[]", g)
			}
			status, _, body := f.get(t, orgKey, tt.path, q)
			if status != http.StatusOK {
				t.Fatalf("status = %d: %v", status, body)
			}
			if body["object"] != "page" || body["has_more"] != false || body["next_page"] != nil {
				t.Fatalf("page = %v, want one page", body)
			}
			data := body["data"].([]any)
			if got, want := len(data), 2; got != want { // yesterday and today, in 1d buckets
				t.Fatalf("buckets = %d, want %d", got, want)
			}
			var results []any
			for _, b := range data {
				b := b.(map[string]any)
				if b["object"] != "bucket" || b["end_time"].(float64)-b["start_time"].(float64) != 86400 {
					t.Fatalf("bucket = %v", b)
				}
				results = append(results, b["results"].([]any)...)
			}
			if got, want := len(results), 1; got != want {
				t.Fatalf("results = %d, want %d: %v", got, want, results)
			}
			r := results[0].(map[string]any)
			if r["object"] != tt.object {
				t.Fatalf("object = %v, want %s", r["object"], tt.object)
			}
			for k, want := range tt.want {
				got, ok := r[k]
				if !ok {
					t.Fatalf("result has no %q: %v", k, r)
				}
				if !jsonClose(got, want) {
					t.Fatalf("%s = %#v, want %#v", k, got, want)
				}
			}
		})
	}
}

// jsonClose compares decoded JSON, numbers to within float noise.
func jsonClose(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && math.Abs(x-y) < 1e-9
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k := range x {
			if !jsonClose(x[k], y[k]) {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestOrganizationPagination(t *testing.T) {
	now := time.Date(2025, 4, 23, 12, 0, 0, 0, time.UTC)
	f := mustStartOrg(t, now)
	for d := range 5 {
		f.org.AddUsage(standin.OrgUsage{At: now.AddDate(0, 0, -d), Endpoint: "embeddings", Model: "text-embedding-3-small", Units: standin.Units{InputTokens: 10 * (d + 1)}})
	}
	q := query("start_time", unix(now.AddDate(0, 0, -4)), "limit", "2", "bucket_width", "1d")
	var tokens float64
	var pages, buckets int
	for {
		status, _, body := f.get(t, orgKey, "/v1/organization/usage/embeddings", q)
		if status != http.StatusOK {
			t.Fatalf("status = %d: %v", status, body)
		}
		pages++
		for _, b := range body["data"].([]any) {
			buckets++
			for _, r := range b.(map[string]any)["results"].([]any) {
				tokens += r.(map[string]any)["input_tokens"].(float64)
			}
		}
		if body["has_more"] == false {
			if body["next_page"] != nil {
				t.Fatalf("last page next_page = %v, want null", body["next_page"])
			}
			break
		}
		next, _ := body["next_page"].(string)
		if !strings.HasPrefix(next, "page_") {
			t.Fatalf("next_page = %v", body["next_page"])
		}
		q.Set("page", next)
	}
	if pages != 3 || buckets != 5 || tokens != 150 {
		t.Fatalf("pages %d, buckets %d, tokens %v; want 3, 5, 150", pages, buckets, tokens)
	}
}

func TestOrganizationAuth(t *testing.T) {
	now := time.Date(2025, 4, 23, 12, 0, 0, 0, time.UTC)
	f := mustStartOrg(t, now)
	tests := []struct {
		name    string
		key     string
		status  int
		code    any
		message string
	}{
		{"no key", "", 401, nil, "You didn't provide an API key"},
		{"an API key", testKey, 401, nil, "You have insufficient permissions for this operation. Missing scopes: api.usage.read."},
		{"another admin key", "sk-admin-" + "OTHERabcdefghijklmnopqrstuvwxyz0123456789", 401, "invalid_api_key", "Incorrect API key provided: sk-***"},
		{"the admin key", orgKey, 200, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := f.get(t, tt.key, "/v1/organization/costs", query("start_time", unix(now.Add(-time.Hour))))
			if status != tt.status {
				t.Fatalf("status = %d, want %d: %v", status, tt.status, body)
			}
			if tt.status == 200 {
				return
			}
			e := body["error"].(map[string]any)
			if e["code"] != tt.code || !strings.Contains(e["message"].(string), tt.message) || e["type"] != "invalid_request_error" {
				t.Fatalf("error = %v, want code %v and a message with %q", e, tt.code, tt.message)
			}
		})
	}
}

func TestOrganizationRateLimit(t *testing.T) {
	now := time.Date(2025, 4, 23, 12, 0, 0, 0, time.UTC)
	f := mustStartOrg(t, now)
	f.org.RateLimit(1, 2*time.Second)
	q := query("start_time", unix(now.Add(-time.Hour)))
	status, h, body := f.get(t, orgKey, "/v1/organization/usage/completions", q)
	if status != http.StatusTooManyRequests || h.Get("Retry-After") != "2" {
		t.Fatalf("status %d, Retry-After %q; want 429, 2", status, h.Get("Retry-After"))
	}
	if code := body["error"].(map[string]any)["code"]; code != "rate_limit_exceeded" {
		t.Fatalf("code = %v", code)
	}
	if status, _, _ := f.get(t, orgKey, "/v1/organization/usage/completions", q); status != http.StatusOK {
		t.Fatalf("status after the limit = %d, want 200", status)
	}
}

func TestOrganizationBadRequests(t *testing.T) {
	now := time.Date(2025, 4, 23, 12, 0, 0, 0, time.UTC)
	f := mustStartOrg(t, now)
	start := unix(now.Add(-time.Hour))
	tests := []struct {
		name   string
		path   string
		q      url.Values
		status int
		param  any
	}{
		{"no start_time", "/v1/organization/costs", query(), 400, "start_time"},
		{"costs by the hour", "/v1/organization/costs", query("start_time", start, "bucket_width", "1h"), 400, "bucket_width"},
		{"costs by model", "/v1/organization/costs", query("start_time", start, "group_by[]", "model"), 400, "group_by"},
		{"embeddings by batch", "/v1/organization/usage/embeddings", query("start_time", start, "group_by", "batch"), 400, "group_by"},
		{"too many minutes", "/v1/organization/usage/completions", query("start_time", start, "bucket_width", "1m", "limit", "1441"), 400, "limit"},
		{"a bad cursor", "/v1/organization/usage/completions", query("start_time", start, "page", "nonsense"), 400, "page"},
		{"an unknown usage", "/v1/organization/usage/nothing", query("start_time", start), 404, nil},
		{"minutes", "/v1/organization/usage/completions", query("start_time", start, "bucket_width", "1m", "limit", "1440"), 200, nil},
		{"group_by without brackets", "/v1/organization/usage/images", query("start_time", start, "group_by", "size"), 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := f.get(t, orgKey, tt.path, tt.q)
			if status != tt.status {
				t.Fatalf("status = %d, want %d: %v", status, tt.status, body)
			}
			if status >= 400 {
				if p := body["error"].(map[string]any)["param"]; p != tt.param {
					t.Fatalf("param = %v, want %v", p, tt.param)
				}
			}
		})
	}
}

func TestOrganizationLags(t *testing.T) {
	now := time.Date(2025, 4, 23, 12, 0, 0, 0, time.UTC)
	clock := now
	org := standin.NewOrganization(nil, standin.OrgOptions{Now: func() time.Time { return clock }, Lag: 10 * time.Minute})
	ts := httptest.NewServer(org)
	defer ts.Close()
	f := orgFixture{org: org, url: ts.URL}
	org.AddUsage(standin.OrgUsage{At: now.Add(-5 * time.Minute), Endpoint: "images", Model: "dall-e-3", Units: standin.Units{Images: 3, Size: "1024x1024"}, USD: 0.12})
	images := func() float64 {
		_, _, body := f.get(t, orgKey, "/v1/organization/usage/images", query("start_time", unix(now.Add(-time.Hour)), "bucket_width", "1h"))
		n := 0.0
		for _, b := range body["data"].([]any) {
			for _, r := range b.(map[string]any)["results"].([]any) {
				n += r.(map[string]any)["images"].(float64)
			}
		}
		return n
	}
	if got := images(); got != 0 {
		t.Fatalf("images before the lag = %v, want 0", got)
	}
	clock = now.Add(5 * time.Minute)
	if got := images(); got != 3 {
		t.Fatalf("images after the lag = %v, want 3", got)
	}
}

// What goes through the stand-in API shows up in the organization's usage
// and costs.
func TestOrganizationSeesAPICharges(t *testing.T) {
	now := time.Date(2025, 4, 23, 12, 0, 0, 0, time.UTC)
	f := mustStartOrg(t, now)
	cfg := openai.DefaultConfig(testKey)
	cfg.BaseURL = f.url + "/v1"
	c := openai.NewClientWithConfig(cfg)
	for range 3 {
		_, err := c.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{Model: "gpt-4o-mini",
			Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "Say hello"}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	var in, out int
	for _, ch := range f.api.Charges() {
		in, out = in+ch.Units.InputTokens, out+ch.Units.OutputTokens
	}
	start := unix(now.Truncate(24 * time.Hour))
	_, _, body := f.get(t, orgKey, "/v1/organization/usage/completions", query("start_time", start, "group_by[]", "api_key_id", "group_by[]", "model"))
	r := body["data"].([]any)[0].(map[string]any)["results"].([]any)[0].(map[string]any)
	if r["input_tokens"] != float64(in) || r["output_tokens"] != float64(out) || r["num_model_requests"] != 3.0 ||
		r["model"] != "gpt-4o-mini" || r["api_key_id"] != "key_standin" {
		t.Fatalf("result = %v, want %d in, %d out, 3 requests of gpt-4o-mini on key_standin", r, in, out)
	}
	_, _, body = f.get(t, orgKey, "/v1/organization/costs", query("start_time", start))
	amount := body["data"].([]any)[0].(map[string]any)["results"].([]any)[0].(map[string]any)["amount"].(map[string]any)["value"].(float64)
	if math.Abs(amount-f.api.Bill()) > 1e-12 || amount == 0 {
		t.Fatalf("costs = %v, want the stand-in's bill %v", amount, f.api.Bill())
	}
}
