package watchdog

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/notify"
	"github.com/keycap/keycap/watchdog/reconcile"
	"github.com/keycap/keycap/watchdog/standin"
)

const testAdminKey = "sk-admin-" + "ENGINEabcdefghijklmnopqrstuvwxyz0123456789"

// With count_untracked_against_cap, images a notebook made with another
// key count against keycap's cap: an event, a notification, and a refusal
// that says why.
func TestUntrackedSpendCountsAgainstCap(t *testing.T) {
	home := t.TempDir()
	up := standin.New(standin.Options{APIKey: realKey, Prices: loadPrices(t)})
	org := standin.NewOrganization(up, standin.OrgOptions{AdminKey: testAdminKey})
	ts := httptest.NewServer(org)
	defer ts.Close()
	now := time.Now()
	for i := range 20 { // $0.80 of DALL-E 3, an hour ago
		org.AddUsage(standin.OrgUsage{At: now.Add(-time.Hour + time.Duration(i)*time.Second), Endpoint: "images", Model: "dall-e-3",
			APIKeyID: "key_notebook", ProjectID: "proj_x", Units: standin.Units{Images: 1, Size: "1024x1024"}, Source: "image.generation", USD: 0.04})
	}
	cfg := config.Default()
	cfg.Listen, cfg.Upstream, cfg.DailyCapUSD = "127.0.0.1:0", ts.URL+"/v1", 1
	cfg.Reconcile.CountUntrackedAgainstCap = true
	if err := config.Save(filepath.Join(home, config.FileName), cfg); err != nil {
		t.Fatal(err)
	}
	notes := &notify.Recorder{}
	w, err := Open(Options{Home: home, Key: func() (string, error) { return realKey, nil },
		AdminKey: func() (string, error) { return testAdminKey, nil }, Notifier: notes, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	s, err := w.SyncOpenAI(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Untracked < 79*money.Cent || s.Untracked > 80*money.Cent {
		t.Fatalf("untracked = %s, want $0.80", s.Untracked)
	}
	st := w.Status()
	if st.Remaining > 21*money.Cent || st.Untracked != s.Untracked {
		t.Fatalf("remaining %s, counted %s: want the cap less the untracked spend", st.Remaining, st.Untracked)
	}
	if len(st.OpenAILines) == 0 || !strings.HasPrefix(st.OpenAILines[0], "OpenAI reports $0.80 today (as of ") {
		t.Fatalf("status lines = %q", st.OpenAILines)
	}
	evs, err := w.Ledger().Events(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 || evs[0].Kind != reconcile.EventKind || !strings.Contains(evs[0].Message, "dall-e-3 on key key_notebook") {
		t.Fatalf("events = %+v, want untracked spend first", evs)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(notes.Notifications()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ns := notes.Notifications(); len(ns) != 1 || ns[0].Kind != reconcile.EventKind {
		t.Fatalf("notifications = %+v, want one of untracked spend", ns)
	}
	tok, _, err := w.IssueToken(context.Background(), "x", time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := openai.DefaultConfig(tok)
	c.BaseURL = w.ProxyURL()
	img := openai.ImageRequest{Model: "dall-e-3", Prompt: "x", N: 1, Size: "1792x1024", Quality: "hd"} // $0.12
	if _, err := openai.NewClientWithConfig(c).CreateImage(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	_, err = openai.NewClientWithConfig(c).CreateImage(context.Background(), img)
	if err == nil || !strings.Contains(err.Error(), "OpenAI reports was spent outside keycap") {
		t.Fatalf("err = %v, want the cap refusal naming spend outside keycap", err)
	}
}

func TestStatusSaysReconciliationIsOffWithoutAdminKey(t *testing.T) {
	h := MustStart(t)
	if _, err := h.w.SyncOpenAI(context.Background()); !reconcile.IsNeedsAdminKey(err) {
		t.Fatalf("err = %v, want the admin key sentence", err)
	}
	st := h.w.Status()
	if len(st.OpenAILines) != 1 || !strings.HasPrefix(st.OpenAILines[0], "Reconciliation with OpenAI is off: it needs an organization admin key") {
		t.Fatalf("lines = %q, want one line saying reconciliation is off", st.OpenAILines)
	}
}
