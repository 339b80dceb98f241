// Package app is keycap's desktop app: a tray icon whose look says how the
// day's budget stands, a menu with live figures and the kill switch, a
// dashboard window with charts, and a settings window. It is a client of the
// engine: it reads the view-model (package viewmodel) the engine feeds and
// sends commands (pause, resume, new token, settings); it never prices,
// meters or enforces anything itself.
//
// All Fyne code of keycap lives here. Updates from the engine reach widgets
// only through fyne.Do.
package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"

	"github.com/keycap/keycap/app/autostart"
	"github.com/keycap/keycap/app/internal/hushinit"
	"github.com/keycap/keycap/app/viewmodel"
	"github.com/keycap/keycap/keystore"
	"github.com/keycap/keycap/watchdog"
	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/money"
)

// Fyne's packages have initialised by now (this package imports them).
func init() { hushinit.Restore() }

// Metadata, also in FyneApp.toml for `fyne package`.
const (
	// ID is keycap's application ID.
	ID = "io.github.keycap.keycap"
	// Name is the application's name.
	Name = "keycap"
	// Version is the application's version.
	Version = "0.1.0"
)

// Engine is what the app needs from the running engine.
type Engine interface {
	viewmodel.Subscriber
	Pause(reason string) error
	Resume() error
	IssueToken(ctx context.Context, label string, ttl time.Duration, budget money.USD) (string, ledger.Token, error)
	UpdateConfig(cfg config.Config) error
	ReloadKey()
	ProxyURL() string
	Home() string
}

var _ Engine = (*watchdog.Watchdog)(nil)

// Keys is the keychain entry of the OpenAI API key.
type Keys interface {
	SetAPIKey(key string) error
	APIKey() (keystore.Key, error)
}

var _ Keys = (*keystore.Keys)(nil)

// Options configure the app.
type Options struct {
	// Engine is the engine the app shows and commands. Required.
	Engine Engine
	// Keys stores the API key the settings window takes. Required.
	Keys Keys
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives diagnostics (default: discard).
	Logger *slog.Logger
	// Autostart is the start-at-login entry (default: this system's).
	Autostart *autostart.Entry
	// HTTPClient checks keys against the upstream (default: Go's).
	HTTPClient *http.Client
	// Tray says whether to show a tray icon; nil detects it (on Linux,
	// a session bus must be reachable: Fyne's tray needs one).
	Tray *bool
}

// errNoDisplay is what keycap says when started without a desktop.
var errNoDisplay = errors.New("there is no display here (DISPLAY and WAYLAND_DISPLAY are unset) and the tray app needs a desktop: run `keycap serve` for the engine alone")

// Run runs the desktop app until the user quits or ctx ends. It must be
// called from the main goroutine (the graphics drivers need the main
// thread). It does not run or close the engine.
func Run(ctx context.Context, o Options) error {
	if o.Engine == nil || o.Keys == nil {
		return errors.New("app: Options.Engine and Options.Keys are required")
	}
	fyneapp.SetMetadata(fyne.AppMetadata{ID: ID, Name: Name, Version: Version, Icon: AppIcon, Release: true})
	a := fyneapp.NewWithID(ID)
	a.SetIcon(AppIcon)
	tray := trayAvailable()
	if o.Tray != nil {
		tray = *o.Tray
	}
	u := newUI(a, o, tray)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		fyne.Do(u.quit)
	}()
	a.Lifecycle().SetOnStarted(func() {
		go u.feed().Run(ctx, func(v viewmodel.View) { fyne.Do(func() { u.show(v) }) })
	})
	u.start()
	a.Run()
	return nil
}

// capIsDefault reports whether the user never chose a cap: no config.toml
// has been written yet.
func capIsDefault(home string) bool {
	_, err := os.Stat(filepath.Join(home, config.FileName))
	return errors.Is(err, os.ErrNotExist)
}
