package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keycap/keycap/keystore"
	"github.com/keycap/keycap/watchdog/control"
	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/problem"
	"github.com/keycap/keycap/watchdog/reconcile"
	"github.com/keycap/keycap/watchdog/report/reporttest"
	"github.com/keycap/keycap/watchdog/standin"
)

const testAdminKey = "sk-admin-" + "REPORTTESTabcdefghijklmnopqrstuvwxyz0123456789"

// reportEnv is a data directory holding the incident day, with a config
// whose upstream is a stand-in of OpenAI's organization APIs that saw the
// same day, plus images keycap never saw.
type reportEnv struct {
	e   *env
	out *bytes.Buffer
	org *standin.Organization
	dir string
}

func mustReportEnv(t *testing.T, adminKey string) reportEnv {
	t.Helper()
	home := t.TempDir()
	db, err := ledger.Open(filepath.Join(home, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	inc := reporttest.MustWriteIncident(t, db)
	db.Close()
	org := standin.NewOrganization(nil, standin.OrgOptions{AdminKey: testAdminKey})
	org.AddUsage(inc.OrgUsage()...)
	ts := httptest.NewServer(org)
	t.Cleanup(ts.Close)
	cfg := "daily_cap_usd = 5.0\ntimezone = \"" + reporttest.Zone + "\"\nupstream = \"" + ts.URL + "/v1\"\n"
	if err := os.WriteFile(filepath.Join(home, "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := &keystore.Keys{Store: &keystore.Memory{}}
	if adminKey != "" {
		if err := keys.SetAdminKey(adminKey); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &out, home: home, log: slog.New(slog.DiscardHandler), keys: keys}
	return reportEnv{e: e, out: &out, org: org, dir: t.TempDir()}
}

func TestReportCommand(t *testing.T) {
	r := mustReportEnv(t, testAdminKey)
	html, chart := filepath.Join(r.dir, "report.html"), filepath.Join(r.dir, "chart.png")
	err := runReport(context.Background(), r.e, []string{"--day", reporttest.Day, "--html", html, "--png", chart})
	if err != nil {
		t.Fatalf("keycap report: %v\n%s", err, r.out)
	}
	out := r.out.String()
	for _, want := range []string{
		"$4.97 spent in 137 request(s) between 09:14 and 14:14",
		"OpenAI reports $5.77 on 2025-04-23",
		"keycap metered $4.97",
		"OpenAI billed $5.77 for the UTC day 2025-04-23 (02:00 to Apr 24 02:00 your time)",
		"Untracked: $0.80 spent outside keycap up to midnight: dall-e-3 on key key_notebook7Qx in project proj_course $0.80.",
		"Wrote " + html, "Wrote " + chart,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("keycap report does not say %q:\n%s", want, out)
		}
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"key_notebook7Qx", "OpenAI usage, priced with keycap", "UTC day 2025-04-23", "loop blocked"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the page does not say %q", want)
		}
	}
	f, err := os.Open(chart)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("the chart is not a PNG: %v", err)
	}

	// The page opens in a real browser, offline, and renders the chart.
	shot := filepath.Join(r.dir, "screenshot.png")
	mustScreenshot(t, html, shot, 1200, 1600)
	img := mustDecodePNG(t, shot)
	if got, want := img.Bounds().Size(), (image.Point{1200, 1600}); got != want {
		t.Fatalf("screenshot is %v, want %v", got, want)
	}
	if n := colours(img); n < 200 {
		t.Fatalf("screenshot has %d colours: the page did not render", n)
	}
	if !hasColour(img, color.RGBA{0xf5, 0x9e, 0x0b, 0xff}) {
		t.Fatal("screenshot shows no amber bars: the chart did not render")
	}
	// KEYCAP_UPDATE_DOCS=1 go test ./cmd/keycap -run TestReportCommand
	// refreshes the sample in docs/.
	if os.Getenv("KEYCAP_UPDATE_DOCS") != "" {
		copyFile(t, html, "../../docs/report.html")
		mustScreenshot(t, html, "../../docs/report.png", 1200, 1600)
	}
}

func TestReportWithoutAdminKey(t *testing.T) {
	r := mustReportEnv(t, "")
	html := filepath.Join(r.dir, "report.html")
	if err := runReport(context.Background(), r.e, []string{"--day", reporttest.Day, "--html", html}); err != nil {
		t.Fatalf("keycap report: %v\n%s", err, r.out)
	}
	want := "OpenAI's own figures are not in this report: reconciliation with OpenAI's usage needs an organization admin key (none is stored): "
	if !strings.Contains(r.out.String(), want) || !strings.Contains(r.out.String(), "keycap key set --admin") {
		t.Fatalf("keycap report says:\n%s\nwant a line saying %q and how to add one", r.out, want)
	}
	if got := len(r.org.Requests()); got != 0 {
		t.Fatalf("%d requests reached OpenAI without an admin key", got)
	}
	page, _ := os.ReadFile(html)
	if !strings.Contains(string(page), "keycap key set --admin") {
		t.Fatal("the page does not say how to add an admin key")
	}
}

func TestReportRefusedAdminKey(t *testing.T) {
	r := mustReportEnv(t, "sk-admin-"+"REVOKEDKEYabcdefghijklmnopqrstuvwxyz0123456789")
	if err := runReport(context.Background(), r.e, []string{"--day", reporttest.Day, "--png", filepath.Join(r.dir, "c.png")}); err != nil {
		t.Fatalf("keycap report: %v\n%s", err, r.out)
	}
	if out := r.out.String(); !strings.Contains(out, "it may have been revoked") || !strings.Contains(out, "keycap key set --admin") {
		t.Fatalf("keycap report says:\n%s\nwant one sentence that the admin key was refused", out)
	}
}

func TestReportNeedsALedger(t *testing.T) {
	var out bytes.Buffer
	e := &env{stdout: &out, stderr: &out, home: t.TempDir(), log: slog.New(slog.DiscardHandler), keys: &keystore.Keys{Store: &keystore.Memory{}}}
	err := runReport(context.Background(), e, []string{"--offline"})
	if err == nil || !strings.Contains(sentence(err), "there is no ledger in") {
		t.Fatalf("err = %v, want a sentence saying there is no ledger yet", err)
	}
	if err := runReport(context.Background(), e, []string{"--day", "yesterday"}); err == nil || !strings.Contains(err.Error(), "like 2025-04-23") {
		t.Fatalf("err = %v, want the day's format", err)
	}
}

// fakeEngine answers the control socket's sync endpoint with h.
func fakeEngine(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	home, err := os.MkdirTemp("", "kc-sync-") // short: a socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	ln, err := net.Listen("unix", filepath.Join(home, control.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+control.SyncPath, h)
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return home
}

func TestSyncPrintsTheComparison(t *testing.T) {
	loc, _ := time.LoadLocation("Asia/Tokyo")
	asOf := time.Date(2025, 4, 23, 10, 0, 0, 0, loc)
	snap := reconcile.Snapshot{Day: "2025-04-23", Timezone: "Asia/Tokyo", AsOf: asOf, ReportedFrom: time.Date(2025, 4, 23, 0, 0, 0, 0, loc), LastSuccess: asOf, ReportedToday: 1_230_000, LocalToday: 1_100_000,
		CostsDays: []reconcile.CostDay{{Day: "2025-04-22", From: time.Date(2025, 4, 22, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 4, 23, 0, 0, 0, 0, time.UTC), Amount: 2_000_000}}}
	home := fakeEngine(t, func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		b, _ := json.Marshal(snap)
		rw.Write(b)
	})
	var out bytes.Buffer
	e := &env{stdout: &out, stderr: &out, home: home, log: slog.New(slog.DiscardHandler)}
	if err := runSync(context.Background(), e, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"OpenAI reports $1.23 today (as of 10:00", "keycap metered $1.10", "UTC day 2025-04-22 (yesterday 09:00 to 09:00 your time)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("keycap sync does not say %q:\n%s", want, out.String())
		}
	}
}

// A normal API key gets one clear sentence, not a stack trace or a zero.
func TestSyncWithoutAdminKey(t *testing.T) {
	home := fakeEngine(t, func(rw http.ResponseWriter, r *http.Request) {
		problem.Write(rw, reconcile.NeedsAdminKey("the key given is an API key, and only admin keys, which start with sk-admin-, may read the organization's usage"))
	})
	var out bytes.Buffer
	e := &env{stdout: &out, stderr: &out, home: home, log: slog.New(slog.DiscardHandler)}
	err := runSync(context.Background(), e, nil)
	if err == nil {
		t.Fatalf("keycap sync succeeded:\n%s", out.String())
	}
	got := sentence(err)
	if !strings.HasPrefix(got, "keycap: reconciliation with OpenAI's usage needs an organization admin key") ||
		!strings.Contains(got, "keycap key set --admin") || strings.Contains(got, "\n") || strings.Contains(out.String(), "$0.00") {
		t.Fatalf("keycap sync says %q (output %q), want one sentence about the admin key", got, out.String())
	}
}

func TestSyncNotRunning(t *testing.T) {
	e := &env{stdout: io.Discard, stderr: io.Discard, home: t.TempDir()}
	if err := runSync(context.Background(), e, nil); err != control.ErrNotRunning {
		t.Fatalf("err = %v, want %v", err, control.ErrNotRunning)
	}
}

// chromium returns the browser to render pages with; it skips the test when
// there is none, unless CI is set.
func chromium(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		tb.Fatal("chromium is not installed; `make test` installs it (Debian package chromium)")
	}
	tb.Skip("chromium is not installed; `make test` installs it (Debian package chromium)")
	return ""
}

// mustScreenshot renders the page at path with headless Chromium, offline
// and with a throwaway profile, into a w×h PNG.
func mustScreenshot(tb testing.TB, page, out string, w, h int) {
	tb.Helper()
	bin := chromium(tb)
	abs, err := filepath.Abs(page)
	if err != nil {
		tb.Fatal(err)
	}
	shot, err := filepath.Abs(out)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir="+tb.TempDir(), "--screenshot="+shot, "--window-size="+strconv.Itoa(w)+","+strconv.Itoa(h), "file://"+abs)
	cmd.Dir = tb.TempDir()
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("chromium: %v\n%s", err, b)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 20_000 {
		tb.Fatalf("chromium wrote no screenshot worth the name (%v)", err)
	}
}

func mustDecodePNG(tb testing.TB, path string) image.Image {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		tb.Fatal(err)
	}
	return img
}

func colours(img image.Image) int {
	seen := map[color.RGBA]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			seen[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)] = true
		}
	}
	return len(seen)
}

func hasColour(img image.Image, want color.RGBA) bool {
	near := func(a, b uint8) bool { return a-b < 12 || b-a < 12 }
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			if near(c.R, want.R) && near(c.G, want.G) && near(c.B, want.B) {
				return true
			}
		}
	}
	return false
}

func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}
