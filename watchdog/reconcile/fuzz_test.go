package reconcile

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/pricing"
	"github.com/keycap/keycap/watchdog/problem"
)

// FuzzPage feeds arbitrary bytes to the client as a usage API page: it
// must return buckets or a *problem.Error, never panic, and price every
// result it returns at zero or more.
func FuzzPage(f *testing.F) {
	f.Add([]byte(`{"object":"page","data":[{"object":"bucket","start_time":1745366400,"end_time":1745366460,"results":[{"object":"organization.usage.completions.result","input_tokens":1000,"output_tokens":50,"num_model_requests":2,"model":"gpt-4o-mini","project_id":null,"api_key_id":"key_1"}]}],"has_more":false,"next_page":null}`))
	f.Add([]byte(`{"object":"page","data":[{"object":"bucket","start_time":1,"end_time":2,"results":[{"object":"organization.costs.result","amount":{"value":"0.06","currency":"usd"},"line_item":"tts-1"}]}],"has_more":true,"next_page":"page_2"}`))
	f.Add([]byte(`{"object":"list"}`))
	f.Add([]byte(`not json`))
	table, err := pricing.Load(nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}))
		defer srv.Close()
		c := &Client{BaseURL: srv.URL + "/v1", Key: func() (string, error) { return "sk-admin-" + "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz", nil },
			HTTP: srv.Client(), Sleep: func(context.Context, time.Duration) error { return nil }}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		buckets, err := c.Usage(ctx, Completions, Query{Start: time.Unix(0, 0), Width: "1m"})
		if err != nil {
			var pe *problem.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error is not a *problem.Error: %T %v", err, err)
			}
			return
		}
		for _, b := range buckets {
			for _, r := range b.Results {
				if usd, _ := Price(table, Completions, r); usd < 0 {
					t.Fatalf("negative price %d for %+v", usd, r)
				}
			}
		}
	})
}
