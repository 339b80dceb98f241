package app

import (
	"context"
	"image"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/keycap/keycap/app/autostart"
	"github.com/keycap/keycap/app/internal/demo"
	"github.com/keycap/keycap/app/viewmodel"
	"github.com/keycap/keycap/keystore"
	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/money"
)

// clock is the tests' time: the afternoon of the incident, in UTC.
var clock = func() time.Time { return time.Date(2025, 4, 23, 14, 30, 0, 0, time.UTC) }

// fakeDesk is a desktop.App that records what is put in the tray.
type fakeDesk struct {
	fyne.App
	menu *fyne.Menu
	icon fyne.Resource
}

func (f *fakeDesk) SetSystemTrayMenu(m *fyne.Menu)    { f.menu = m }
func (f *fakeDesk) SetSystemTrayIcon(r fyne.Resource) { f.icon = r }
func (f *fakeDesk) SetSystemTrayWindow(_ fyne.Window) {}

// recordingKeys counts what the settings window stores.
type recordingKeys struct {
	*keystore.Keys
	mu   sync.Mutex
	sets int
}

func (k *recordingKeys) SetAPIKey(key string) error {
	k.mu.Lock()
	k.sets++
	k.mu.Unlock()
	return k.Keys.SetAPIKey(key)
}

func (k *recordingKeys) calls() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.sets
}

type setup struct {
	ui   *ui
	desk *fakeDesk
	demo *demo.Demo
	keys *recordingKeys
}

// mustUI starts an engine in front of the stand-in with a month of sample
// spend and builds the app on Fyne's test driver, with a fake tray.
func mustUI(tb testing.TB, o demo.Options) *setup {
	tb.Helper()
	a := test.NewTempApp(tb)
	o.Home, o.Now = tb.TempDir(), clock
	cfg := o.Config
	o.Config = func(c *config.Config) {
		c.Timezone = "UTC"
		if cfg != nil {
			cfg(c)
		}
	}
	d, err := demo.Open(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Close)
	desk := &fakeDesk{App: a}
	keys := &recordingKeys{Keys: d.Keys}
	// A fixed directory keeps the golden images the same from run to run;
	// TestStartAtLogin points it somewhere writable.
	auto := &autostart.Entry{Kind: autostart.XDG, Exec: "/usr/bin/keycap", Dir: "/nonexistent/.config/autostart"}
	u := newUI(desk, Options{Engine: d.Engine, Keys: keys, Now: clock, Autostart: auto}, true)
	u.async = func(f func()) { f() }
	u.start()
	return &setup{ui: u, desk: desk, demo: d, keys: keys}
}

func TestTrayMenuAndKillSwitch(t *testing.T) {
	s := mustUI(t, demo.Options{Sample: true})
	if s.desk.menu == nil {
		t.Fatal("no tray menu was set")
	}
	labels := func() []string {
		var out []string
		for _, it := range s.desk.menu.Items {
			out = append(out, it.Label)
		}
		return out
	}
	want := []string{"Today: $2.79 of $5.00", "Reserved right now: $0.00", "chatlog.py: $2.25", "airline.py: $0.51", "", "Pause all", "New terminal token…", "Open dashboard", "Settings…", "", "Quit"}
	if got := labels(); !slices.Equal(got, want) {
		t.Fatalf("menu = %q\nwant   %q", got, want)
	}
	if got, want := s.desk.icon, iconFor(viewmodel.Warning); got != want {
		t.Fatalf("icon = %v, want the warning icon", got.Name())
	}

	s.ui.tray.item(viewmodel.PauseAll).Action()
	if !s.demo.Engine.Status().Paused {
		t.Fatal("engine not paused after Pause all")
	}
	if got := labels(); got[0] != viewmodel.AlertPaused || !slices.Contains(got, viewmodel.Resume) || slices.Contains(got, viewmodel.PauseAll) {
		t.Fatalf("menu after pausing = %q, want the paused alert and Resume", got)
	}
	if got, want := s.desk.icon, iconFor(viewmodel.Paused); got != want {
		t.Fatalf("icon = %v, want the paused icon", got.Name())
	}
	if _, _, err := s.demo.Engine.IssueToken(context.Background(), "x", time.Minute, 0); err == nil {
		t.Fatal("a token was issued while paused")
	}

	s.ui.tray.item(viewmodel.Resume).Action()
	if s.demo.Engine.Status().Paused {
		t.Fatal("engine still paused after Resume")
	}
	if got := labels(); !slices.Contains(got, viewmodel.PauseAll) {
		t.Fatalf("menu after resuming = %q, want Pause all", got)
	}
}

func TestFirstRunOpensSettingsWithTheKeyFocused(t *testing.T) {
	s := mustUI(t, demo.Options{NoKey: true})
	if got, want := s.desk.icon, iconFor(viewmodel.NoKey); got != want {
		t.Fatalf("icon = %v, want the no-key icon", got.Name())
	}
	if got, want := s.desk.menu.Items[0].Label, viewmodel.AlertNoKey; got != want {
		t.Fatalf("first menu item = %q, want %q", got, want)
	}
	if got := s.ui.settings.window.Canvas().Focused(); got != s.ui.settings.key {
		t.Fatalf("focused = %v, want the key field", got)
	}
}

func TestSavingAKeyCallsTheKeystore(t *testing.T) {
	s := mustUI(t, demo.Options{NoKey: true})
	st := s.ui.settings
	test.Type(st.key, "sk-not-a-key")
	test.Tap(st.saveKey)
	if got := st.keyResult.Text; !strings.Contains(got, "too short") {
		t.Fatalf("result = %q, want the refusal", got)
	}
	if _, err := s.keys.APIKey(); err == nil {
		t.Fatal("a malformed key was stored")
	}

	st.key.SetText("")
	test.Type(st.key, demo.Key)
	test.Tap(st.saveKey)
	if got := st.keyResult.Text; !strings.HasPrefix(got, "The key works") {
		t.Fatalf("result = %q, want the check to say the key works", got)
	}
	if got := s.keys.calls(); got != 2 {
		t.Fatalf("SetAPIKey calls = %d, want 2", got)
	}
	k, err := s.keys.APIKey()
	if err != nil || k.Value != demo.Key {
		t.Fatalf("stored key = %v, %v; want the typed key", k, err)
	}
	if !s.demo.Engine.Status().KeyPresent {
		t.Fatal("the engine did not pick the key up")
	}
	if st.key.Text != "" {
		t.Errorf("key field = %q after saving, want it cleared", st.key.Text)
	}
	if strings.Contains(st.keyResult.Text, demo.Key) || strings.Contains(st.keyStored.Text, demo.Key) {
		t.Errorf("the window shows the key: %q / %q", st.keyResult.Text, st.keyStored.Text)
	}
}

func TestBadCapIsRefusedWithASentence(t *testing.T) {
	s := mustUI(t, demo.Options{Sample: true})
	st := s.ui.settings
	st.cap.SetText("")
	test.Type(st.cap, "five dollars")
	if got, want := st.problem.Text, "The daily cap must be an amount in dollars, like 5 or 12.50."; got != want {
		t.Fatalf("problem = %q, want %q", got, want)
	}
	if !st.save.Disabled() {
		t.Fatal("Save is enabled with a bad cap")
	}
	if err := st.cap.Validate(); err == nil || err.Error() != "The daily cap must be an amount in dollars, like 5 or 12.50." {
		t.Fatalf("field validation = %v, want the sentence", err)
	}
	test.Tap(st.save)
	if got, want := s.demo.Engine.Config().Cap(), 5*money.Dollar; got != want {
		t.Fatalf("engine cap = %v, want it unchanged at %v", got, want)
	}

	st.cap.SetText("")
	test.Type(st.cap, "12.50")
	if st.problem.Text != "" || st.save.Disabled() {
		t.Fatalf("problem = %q, save disabled = %v; want a clean form", st.problem.Text, st.save.Disabled())
	}
	test.Tap(st.save)
	if got, want := s.demo.Engine.Status().Cap, 1250*money.Cent; got != want {
		t.Fatalf("engine cap = %v, want %v at once", got, want)
	}
	if got, want := s.desk.menu.Items[0].Label, "Today: $2.79 of $12.50"; got != want {
		t.Fatalf("tray = %q, want %q", got, want)
	}
}

func TestStartAtLogin(t *testing.T) {
	s := mustUI(t, demo.Options{Sample: true})
	s.ui.o.Autostart.Dir = filepath.Join(t.TempDir(), "autostart")
	st := s.ui.settings
	test.Tap(st.login)
	if on, err := s.ui.o.Autostart.Enabled(); err != nil || !on {
		t.Fatalf("autostart enabled = %v, %v; want true", on, err)
	}
	test.Tap(st.login)
	if on, err := s.ui.o.Autostart.Enabled(); err != nil || on {
		t.Fatalf("autostart enabled = %v, %v; want false", on, err)
	}
}

func TestNewTerminalTokenCopiesExportLines(t *testing.T) {
	s := mustUI(t, demo.Options{Sample: true})
	s.ui.tray.item(viewmodel.NewToken).Action()
	got := s.ui.app.Clipboard().Content()
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "export OPENAI_API_KEY=kc-") || lines[1] != "export OPENAI_BASE_URL="+s.demo.Engine.ProxyURL() {
		t.Fatalf("clipboard = %q, want the two export lines", got)
	}
	secret := strings.TrimPrefix(lines[0], "export OPENAI_API_KEY=")
	w := s.ui.token
	if strings.Contains(w.result.Text+w.lines.Text, secret) {
		t.Fatal("the token window shows the token")
	}
	if !strings.Contains(w.result.Text, "Copied to the clipboard") {
		t.Fatalf("result = %q", w.result.Text)
	}
	if got, want := s.demo.Engine.Status().LiveTokens, 1; got != want {
		t.Fatalf("live tokens = %d, want %d", got, want)
	}
}

func TestDashboardShowsRefusals(t *testing.T) {
	s := mustUI(t, demo.Options{Sample: true})
	s.ui.tray.item(viewmodel.PauseAll).Action()
	s.ui.tray.item(viewmodel.NewToken).Action()
	if got := s.ui.token.result.Text; !strings.HasPrefix(got, "Keycap is paused") {
		t.Fatalf("token window says %q, want the refusal", got)
	}
	if got := s.ui.app.Clipboard().Content(); got != "" {
		t.Fatalf("clipboard = %q, want nothing copied", got)
	}
}

// capture renders a window's content at a fixed size.
func capture(w fyne.Window, size fyne.Size) image.Image {
	w.Resize(size)
	return w.Canvas().Capture()
}

func TestGoldenDashboard(t *testing.T) {
	s := mustUI(t, demo.Options{Sample: true})
	test.AssertImageMatches(t, "dashboard.png", capture(s.ui.dash.window, fyne.NewSize(1100, 840)))
}

func TestGoldenDashboardFirstRun(t *testing.T) {
	s := mustUI(t, demo.Options{NoKey: true})
	// A first run has no config.toml yet; the demo wrote one.
	if err := os.Remove(filepath.Join(s.demo.Home, config.FileName)); err != nil {
		t.Fatal(err)
	}
	s.ui.show(s.ui.build())
	test.AssertImageMatches(t, "dashboard-first-run.png", capture(s.ui.dash.window, fyne.NewSize(1100, 840)))
}

func TestGoldenSettings(t *testing.T) {
	s := mustUI(t, demo.Options{Sample: true, Config: func(c *config.Config) { c.Upstream = config.DefaultUpstream }})
	s.ui.openSettings()
	test.AssertImageMatches(t, "settings.png", capture(s.ui.settings.window, fyne.NewSize(700, 680)))

	s.ui.settings.cap.SetText("")
	test.Type(s.ui.settings.cap, "-5")
	test.AssertImageMatches(t, "settings-bad-cap.png", capture(s.ui.settings.window, fyne.NewSize(700, 680)))
}
