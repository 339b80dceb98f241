//go:build linux && cgo && !ci

package app

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	openai "github.com/sashabaranov/go-openai"

	"github.com/keycap/keycap/app/internal/demo"
	"github.com/keycap/keycap/app/viewmodel"
	"github.com/keycap/keycap/keystore/keystoretest"
	"github.com/keycap/keycap/watchdog/control"
)

// These tests run the real app (Fyne's OpenGL driver, its real tray) in a
// child process under Xvfb, on a private session bus where the test plays
// the desktop's tray host: it owns org.kde.StatusNotifierWatcher, takes the
// app's registration and drives its menu over com.canonical.dbusmenu, as a
// panel would. They need Xvfb and dbus-daemon (apt-get install xvfb dbus);
// without them they are skipped, or fail when CI is set. Set
// KEYCAP_SCREENSHOT to a PNG path to also photograph the dashboard (needs
// xwd, from x11-apps).

func init() { runChild = childApp }

// dashboardTitle starts the dashboard window's title, which goes on with
// today's figures.
const dashboardTitle = "keycap — $"

// childApp is the child: the demo engine (the stand-in upstream, a month of
// sample spend, its control socket on) and the real app, until SIGTERM.
func childApp(home string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	d, err := demo.Open(demo.Options{Home: home, Sample: true, Control: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Engine.Run(ctx) }()
	err = Run(ctx, Options{Engine: d.Engine, Keys: d.Keys})
	cancel()
	if err := errors.Join(err, <-done); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// timeout bounds every wait; nothing here should take more than a few
// seconds, but a loaded CI machine may be slow.
const timeout = 90 * time.Second

// need finds the programs a test needs: it skips the test without them,
// or fails it when CI is set.
func need(tb testing.TB, programs ...string) {
	tb.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			msg := fmt.Sprintf("%s is needed to test the real tray (apt-get install xvfb dbus, and x11-apps for the screenshot): %v", p, err)
			if os.Getenv("CI") != "" {
				tb.Fatal(msg)
			}
			tb.Skip(msg)
		}
	}
}

// startXvfb starts a private X server and returns its DISPLAY.
func startXvfb(tb testing.TB) string {
	tb.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	var stderr bytes.Buffer
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1280x960x24", "-nolisten", "tcp", "-noreset")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	w.Close()
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case n := <-line:
		if n == "" {
			tb.Fatalf("Xvfb did not start: %s", stderr.String())
		}
		return ":" + n
	case <-time.After(timeout):
		tb.Fatalf("Xvfb printed no display within %v: %s", timeout, stderr.String())
	}
	return ""
}

// child is the app running in a child process.
type child struct {
	cmd    *exec.Cmd
	home   string
	stderr *lockedBuffer
	exited chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startChild runs this test binary as the app, on display and bus.
func startChild(tb testing.TB, display, bus string) *child {
	tb.Helper()
	dir := tb.TempDir()
	c := &child{home: filepath.Join(dir, "keycap"), stderr: &lockedBuffer{}, exited: make(chan struct{})}
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	c.cmd = exec.Command(exe, "-test.run=^$")
	c.cmd.Env = append(os.Environ(), childEnv+"="+c.home, "DISPLAY="+display, "DBUS_SESSION_BUS_ADDRESS="+bus,
		"HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_RUNTIME_DIR="+dir, "WAYLAND_DISPLAY=", "FYNE_SCALE=1")
	c.cmd.Stdout, c.cmd.Stderr = c.stderr, c.stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		c.cmd.Wait()
		close(c.exited)
	}()
	tb.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			c.cmd.Process.Kill()
			<-c.exited
		}
	})
	return c
}

// quit asks the app to stop, as the session does at logout, and checks
// that it stops cleanly: Fyne's tray panics on a bad quit.
func (c *child) quit(tb testing.TB) {
	tb.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(timeout):
		tb.Fatalf("the app did not quit within %v of SIGTERM; its output:\n%s", timeout, c.stderr.String())
	}
	if code := c.cmd.ProcessState.ExitCode(); code != 0 || strings.Contains(c.stderr.String(), "panic") {
		tb.Fatalf("the app exited with %d; its output:\n%s", code, c.stderr.String())
	}
}

// wait polls cond until it holds; what says what is awaited, and cond's
// string what it saw last.
func (c *child) wait(tb testing.TB, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		select {
		case <-c.exited:
			tb.Fatalf("the app exited while waiting for %s; its output:\n%s", what, c.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("waited %v for %s; last saw %s; the app's output:\n%s", timeout, what, saw, c.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// status asks the app's engine for its state over its control socket.
func (c *child) status(ctx context.Context) (control.Status, error) {
	return control.NewClient(c.home).Status(ctx)
}

// watcher plays org.kde.StatusNotifierWatcher: it records who registers.
type watcher struct{ items chan string }

// RegisterStatusNotifierItem is the call a tray item makes to be shown.
func (w *watcher) RegisterStatusNotifierItem(sender dbus.Sender, path string) *dbus.Error {
	select {
	case w.items <- string(sender):
	default:
	}
	return nil
}

// host owns the tray host's name on bus, as a desktop panel would.
func host(tb testing.TB, bus string) (*dbus.Conn, *watcher) {
	tb.Helper()
	conn, err := dbus.Connect(bus)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	w := &watcher{items: make(chan string, 8)}
	if err := conn.Export(w, "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"); err != nil {
		tb.Fatal(err)
	}
	reply, err := conn.RequestName("org.kde.StatusNotifierWatcher", dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		tb.Fatalf("own org.kde.StatusNotifierWatcher: %v (reply %v)", err, reply)
	}
	return conn, w
}

// item is one entry of a dbusmenu.
type item struct {
	id      int32
	label   string
	enabled bool
}

// menu reads the item's whole menu with GetLayout, as a panel does when
// the user opens it.
func menu(conn *dbus.Conn, sender string) ([]item, error) {
	var path dbus.ObjectPath
	v, err := conn.Object(sender, "/StatusNotifierItem").GetProperty("org.kde.StatusNotifierItem.Menu")
	if err != nil {
		return nil, err
	}
	if err := v.Store(&path); err != nil {
		return nil, err
	}
	var rev uint32
	var root struct {
		ID       int32
		Props    map[string]dbus.Variant
		Children []dbus.Variant
	}
	if err := conn.Object(sender, path).Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{}).Store(&rev, &root); err != nil {
		return nil, err
	}
	var items []item
	for _, ch := range root.Children {
		fields, ok := ch.Value().([]any)
		if !ok || len(fields) < 2 {
			return nil, fmt.Errorf("menu item %v is not (ia{sv}av)", ch)
		}
		id, _ := fields[0].(int32)
		props, _ := fields[1].(map[string]dbus.Variant)
		it := item{id: id, enabled: true}
		if t, ok := props["type"]; ok && t.Value() == "separator" {
			it.label = "---"
		} else if l, ok := props["label"]; ok {
			it.label, _ = l.Value().(string)
			it.label = strings.ReplaceAll(it.label, "__", "_")
		}
		if e, ok := props["enabled"]; ok {
			it.enabled, _ = e.Value().(bool)
		}
		items = append(items, it)
	}
	return items, nil
}

func labels(items []item) string {
	var out []string
	for _, it := range items {
		out = append(out, it.label)
	}
	return fmt.Sprintf("%q", out)
}

func find(items []item, label string) (item, bool) {
	for _, it := range items {
		if it.label == label {
			return it, true
		}
	}
	return item{}, false
}

// complete reports whether a menu read is whole: the desktop's copy is
// rebuilt item by item whenever a label changes, and a read in the middle
// of that sees part of it.
func complete(items []item) bool {
	for _, want := range []string{viewmodel.NewToken, viewmodel.OpenDashboard, viewmodel.OpenSettings} {
		if _, ok := find(items, want); !ok {
			return false
		}
	}
	return len(items) > 0 && items[len(items)-1].label == viewmodel.Quit
}

// steadyMenu waits until the menu is whole, holds the label want, and reads
// the same twice in a row (so its item ids will still be valid when
// clicked).
func steadyMenu(tb testing.TB, app *child, conn *dbus.Conn, sender, want string) []item {
	tb.Helper()
	var last, items []item
	app.wait(tb, fmt.Sprintf("a steady menu with %q", want), func() (bool, string) {
		var err error
		items, err = menu(conn, sender)
		if err != nil {
			return false, err.Error()
		}
		_, ok := find(items, want)
		same := fmt.Sprint(items) == fmt.Sprint(last)
		last = items
		return ok && complete(items) && same, labels(items)
	})
	return items
}

// click sends the "clicked" event for the item labelled label.
func click(tb testing.TB, app *child, conn *dbus.Conn, sender, label string) {
	tb.Helper()
	it, _ := find(steadyMenu(tb, app, conn, sender, label), label)
	if err := conn.Object(sender, "/StatusNotifierMenu").Call("com.canonical.dbusmenu.Event", 0, it.id, "clicked", dbus.MakeVariant(""), uint32(0)).Err; err != nil {
		tb.Fatalf("click %q: %v", label, err)
	}
}

func TestTrayOverDBus(t *testing.T) {
	need(t, "Xvfb", "dbus-daemon")
	display := startXvfb(t)
	bus, err := keystoretest.StartBus(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	conn, w := host(t, bus.Address)
	app := startChild(t, display, bus.Address)
	ctx := context.Background()

	var sender string
	select {
	case sender = <-w.items:
	case <-app.exited:
		t.Fatalf("the app exited before registering its tray icon; its output:\n%s", app.stderr.String())
	case <-time.After(timeout):
		t.Fatalf("the app did not register a tray icon within %v; its output:\n%s", timeout, app.stderr.String())
	}
	var st control.Status
	app.wait(t, "the engine", func() (bool, string) {
		st, err = app.status(ctx)
		return err == nil, fmt.Sprint(err)
	})

	// The menu says today's spend, as the engine counts it.
	spend := func(st control.Status) string { return fmt.Sprintf("Today: %s of %s", st.Spent, st.Cap) }
	items := steadyMenu(t, app, conn, sender, spend(st))
	for _, want := range []string{"Reserved right now: $0.00", viewmodel.PauseAll, viewmodel.NewToken, viewmodel.OpenDashboard, viewmodel.OpenSettings, viewmodel.Quit} {
		if _, ok := find(items, want); !ok {
			t.Errorf("no %q in the menu %s", want, labels(items))
		}
	}
	icon := func() string {
		v, err := conn.Object(sender, "/StatusNotifierItem").GetProperty("org.kde.StatusNotifierItem.IconPixmap")
		if err != nil {
			return err.Error()
		}
		return fmt.Sprint(v.Value())
	}
	iconBefore := icon()

	// A script spends through the proxy: the label follows at once.
	tok, err := control.NewClient(app.home).Token(ctx, control.TokenRequest{Label: "chatlog.py", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cfg := openai.DefaultConfig(tok.Token)
	cfg.BaseURL = tok.ProxyURL
	ai := openai.NewClientWithConfig(cfg)
	for range 3 {
		resp, err := ai.CreateSpeech(ctx, openai.CreateSpeechRequest{Model: openai.TTSModel1, Input: strings.Repeat("Read the chat log aloud again. ", 100), Voice: openai.VoiceAlloy})
		if err != nil {
			t.Fatal(err)
		}
		resp.Close()
	}
	// Each request settles when its response body is closed, just after
	// the client has read it.
	var after control.Status
	app.wait(t, "three requests to settle", func() (bool, string) {
		after, err = app.status(ctx)
		return err == nil && after.Requests == st.Requests+3 && after.Reserved == 0, fmt.Sprintf("%+v %v", after, err)
	})
	if after.Spent <= st.Spent {
		t.Fatalf("spent %v after three requests, was %v", after.Spent, st.Spent)
	}
	steadyMenu(t, app, conn, sender, spend(after))

	// The kill switch.
	click(t, app, conn, sender, viewmodel.PauseAll)
	app.wait(t, "the engine to pause", func() (bool, string) {
		st, err := app.status(ctx)
		return err == nil && st.Paused, fmt.Sprint(st.Paused, err)
	})
	items = steadyMenu(t, app, conn, sender, viewmodel.Resume)
	if _, pause := find(items, viewmodel.PauseAll); pause || items[0].label != viewmodel.AlertPaused {
		t.Fatalf("menu when paused = %s, want the paused alert first and no %q", labels(items), viewmodel.PauseAll)
	}
	if _, err := control.NewClient(app.home).Token(ctx, control.TokenRequest{Label: "x"}); err == nil {
		t.Fatal("a token was issued while paused")
	}
	app.wait(t, "the paused icon", func() (bool, string) { return icon() != iconBefore, "the same icon" })

	click(t, app, conn, sender, viewmodel.Resume)
	app.wait(t, "the engine to resume", func() (bool, string) {
		st, err := app.status(ctx)
		return err == nil && !st.Paused, fmt.Sprint(st.Paused, err)
	})

	// With a tray host, the dashboard waits for Open dashboard.
	if _, shown, err := findWindow(display, dashboardTitle); err != nil || shown {
		t.Fatalf("dashboard shown at start = %v (%v), want it hidden while the tray is there", shown, err)
	}
	click(t, app, conn, sender, viewmodel.OpenDashboard)
	id := waitWindow(t, app, display, dashboardTitle)
	if path := os.Getenv("KEYCAP_SCREENSHOT"); path != "" {
		need(t, "xwd")
		screenshot(t, app, display, id, path)
	}
	app.quit(t)
}

func TestRunsWithoutATray(t *testing.T) {
	need(t, "Xvfb", "dbus-daemon")
	tests := []struct {
		name string
		bus  func(t *testing.T) string
	}{
		// Fyne's tray panics on quit without a session bus.
		{"no session bus", func(t *testing.T) string { return "unix:path=" + filepath.Join(t.TempDir(), "no-bus-here") }},
		// A bus, but no panel showing tray icons (GNOME without the
		// AppIndicator extension).
		{"no tray host", func(t *testing.T) string {
			bus, err := keystoretest.StartBus(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(bus.Close)
			return bus.Address
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			display := startXvfb(t)
			app := startChild(t, display, tt.bus(t))
			ctx := context.Background()
			app.wait(t, "the engine", func() (bool, string) {
				_, err := app.status(ctx)
				return err == nil, fmt.Sprint(err)
			})
			// With no tray to come back to, the dashboard opens at once.
			waitWindow(t, app, display, dashboardTitle)
			app.quit(t)
		})
	}
}

// waitWindow waits for a viewable window whose title contains title, and
// returns its id.
func waitWindow(tb testing.TB, app *child, display, title string) uint32 {
	tb.Helper()
	var id uint32
	app.wait(tb, "a window titled "+title, func() (bool, string) {
		var viewable bool
		var err error
		id, viewable, err = findWindow(display, title)
		return err == nil && id != 0 && viewable, fmt.Sprintf("window %#x viewable %v, %v", id, viewable, err)
	})
	return id
}

func xcmd(display, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	return cmd
}

// screenshot saves window id as a PNG once two captures in a row agree,
// so the picture is of a finished frame.
func screenshot(tb testing.TB, app *child, display string, id uint32, path string) {
	tb.Helper()
	var last []byte
	var img image.Image
	app.wait(tb, "a steady picture of the dashboard", func() (bool, string) {
		out, err := xcmd(display, "xwd", "-id", fmt.Sprintf("%#x", id), "-silent").Output()
		if err != nil {
			return false, err.Error()
		}
		same := bytes.Equal(out, last)
		last = out
		if !same {
			return false, "the window is still changing"
		}
		img, err = decodeXWD(out)
		return err == nil, fmt.Sprint(err)
	})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("wrote %s (%v)", path, img.Bounds().Size())
}
