package keycheck_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keycap/keycap/app/keycheck"
	"github.com/keycap/keycap/watchdog/standin"
)

const key = "sk-proj-" + "TESTtestTESTtestTESTtestTESTtestTESTtest0000abcd"

func TestCheck(t *testing.T) {
	up := httptest.NewServer(standin.New(standin.Options{APIKey: key}))
	defer up.Close()
	limited := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`))
	}))
	defer limited.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	tests := []struct {
		name, upstream, key string
		wantOK              bool
		wantStatus          int
		wantIn              string
	}{
		{"good key", up.URL + "/v1", key, true, 0, "The key works: 127.0.0.1"},
		{"wrong key", up.URL + "/v1", strings.Replace(key, "abcd", "wxyz", 1), false, 401, "refused this key (401)"},
		{"no credit", limited.URL + "/v1", key, false, 429, "out of credit"},
		{"nobody there", closed.URL + "/v1", key, false, 0, "Could not reach 127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := keycheck.Check(context.Background(), tt.upstream, tt.key, nil)
			if r.OK != tt.wantOK || r.Status != tt.wantStatus || !strings.Contains(r.Message, tt.wantIn) {
				t.Fatalf("Check = %+v, want ok=%v status=%d and a message with %q", r, tt.wantOK, tt.wantStatus, tt.wantIn)
			}
			if strings.Contains(r.Message, tt.key) || strings.Contains(r.Message, tt.key[len(tt.key)-8:]) {
				t.Fatalf("message %q shows the key", r.Message)
			}
		})
	}
}
