package report_test

import (
	"bytes"
	"context"
	"encoding/base64"
	stdhtml "html"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/reconcile"
	"github.com/keycap/keycap/watchdog/report"
	"github.com/keycap/keycap/watchdog/report/reporttest"
)

func mustLedger(tb testing.TB) *ledger.DB {
	tb.Helper()
	db, err := ledger.Open(filepath.Join(tb.TempDir(), "ledger.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func mustBuild(tb testing.TB, o report.Options) (*report.Report, reporttest.Incident) {
	tb.Helper()
	db := mustLedger(tb)
	inc := reporttest.MustWriteIncident(tb, db)
	o.Location, o.Cap = inc.Location, reporttest.Cap
	o.Now = func() time.Time { return time.Date(2025, 4, 24, 9, 0, 0, 0, inc.Location) }
	r, err := report.Build(context.Background(), db, reporttest.Day, o)
	if err != nil {
		tb.Fatal(err)
	}
	return r, inc
}

func TestBuildIncident(t *testing.T) {
	r, inc := mustBuild(t, report.Options{})
	if got, want := r.Spent, inc.Spent; got != want {
		t.Fatalf("spent = %s, want %s", got, want)
	}
	if r.Spent > reporttest.Cap || r.Spent < reporttest.Cap-10*money.Cent {
		t.Fatalf("spent = %s, want just under the %s cap", r.Spent, reporttest.Cap)
	}
	if got, want := r.Requests, len(inc.Entries); got != want {
		t.Fatalf("requests = %d, want %d", got, want)
	}
	if got, want := r.RehearsedRequests, inc.Rehearsed; got != want || r.Rehearsed == 0 {
		t.Fatalf("rehearsed = %d (%s), want %d", got, r.Rehearsed, want)
	}
	tests := []struct {
		name      string
		got, want string
	}{
		{"top script", r.Scripts[0].Name, "airline_multi-modal.py"},
		{"top model", r.Models[0].Name, "tts-1"},
		{"top endpoint", r.Endpoints[0].Name, "audio.speech"},
		{"first expensive", r.FirstExpensive.Start.In(inc.Location).Format("15:04:05") + " " + r.FirstExpensive.Model, "09:31:20 gpt-4o"},
		{"last expensive", r.LastExpensive.Start.In(inc.Location).Format(time.RFC3339), inc.Entries[len(inc.Entries)-1].Start.In(inc.Location).Format(time.RFC3339)},
		{"cap reached", r.CapReachedAt.In(inc.Location).Format("15:04"), "14:14"},
		{"peak minute", r.Peak.Start.In(inc.Location).Format("15:04"), "14:13"},
		{"zoom starts", r.Zoom[0].Start.In(inc.Location).Format("15:04"), "13:40"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	var kinds []string
	for _, e := range r.Events {
		kinds = append(kinds, e.Kind)
	}
	if got, want := strings.Join(kinds, " "), "loop_warning loop_blocked threshold spend_rate paused resumed threshold cap_reached paused untracked_spend"; got != want {
		t.Errorf("events = %s\nwant     %s", got, want)
	}
	if got, want := r.Guards, 9; got != want {
		t.Errorf("guard events = %d, want %d", got, want)
	}
	// The timeline adds up to the day.
	if got, want := r.Bins[len(r.Bins)-1].Cumulative, r.Spent; got != want {
		t.Errorf("timeline ends at %s, want %s", got, want)
	}
	var costliest money.USD
	for _, e := range r.Costliest {
		if e.Charged() > costliest && costliest != 0 {
			t.Fatal("costliest requests are not dearest first")
		}
		costliest = e.Charged()
	}
	for _, want := range []string{"$4.", "between 09:14 and 14:14", "% of the $5.00 daily cap", "busiest minute was 14:13", "cap was reached at 14:14"} {
		if !strings.Contains(r.Headline(), want) {
			t.Errorf("headline %q does not say %q", r.Headline(), want)
		}
	}
}

func TestEmptyDay(t *testing.T) {
	db := mustLedger(t)
	r, err := report.Build(context.Background(), db, "2025-04-23", report.Options{Location: time.UTC, Cap: money.Dollar})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Headline(), "No requests went through keycap on 2025-04-23."; got != want {
		t.Fatalf("headline = %q, want %q", got, want)
	}
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	if _, err := report.Build(context.Background(), db, "23/04/2025", report.Options{}); err == nil {
		t.Fatal("a malformed day was accepted")
	}
}

func TestHTMLIsSelfContained(t *testing.T) {
	snap := &reconcile.Snapshot{Day: reporttest.Day, AsOf: time.Date(2025, 4, 23, 14, 30, 0, 0, time.UTC), ReportedToday: 580 * money.Cent,
		Untracked: 80 * money.Cent, Sources: []reconcile.Source{{APIKeyID: "key_notebook7Qx", ProjectID: "proj_course", Model: "dall-e-3", Amount: 80 * money.Cent, Requests: 20}}}
	r, _ := mustBuild(t, report.Options{OpenAI: snap})
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{"<!DOCTYPE html>", "keycap</span> spend report · Wednesday 23 April 2025", "airline_multi-modal.py",
		"rehearsal", "loop blocked", "First and last expensive request", "keycap and OpenAI", "key_notebook7Qx", "$0.80", "untracked"} {
		if !strings.Contains(html, want) {
			t.Errorf("the page does not say %q", want)
		}
	}
	// Nothing is fetched: no scripts, no external URLs.
	if m := regexp.MustCompile(`(?i)<script|(src|href)="(https?:)?//`).FindString(html); m != "" {
		t.Errorf("the page loads something: %q", m)
	}
	m := regexp.MustCompile(`src="data:image/png;base64,([^"]+)"`).FindStringSubmatch(html)
	if m == nil {
		t.Fatal("the page has no embedded chart")
	}
	raw, err := base64.StdEncoding.DecodeString(stdhtml.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := img.Bounds().Dx(), report.ChartWidth*2; got != want {
		t.Fatalf("chart width = %d, want %d", got, want)
	}
	if got, want := img.Bounds().Dy(), report.ChartHeight*2*2; got != want {
		t.Fatalf("chart height = %d, want %d (the day and its busiest hour)", got, want)
	}
	if dir := os.Getenv("KEYCAP_REPORT_OUT"); dir != "" {
		os.WriteFile(filepath.Join(dir, "report.html"), b.Bytes(), 0o644)
		os.WriteFile(filepath.Join(dir, "chart.png"), raw, 0o644)
	}
}

func TestOpenAINoteWithoutSnapshot(t *testing.T) {
	r, _ := mustBuild(t, report.Options{OpenAINote: "OpenAI's figures: not compared — needs an admin key"})
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "needs an admin key") {
		t.Fatal("the page does not say why OpenAI's figures are missing")
	}
}
