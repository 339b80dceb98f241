package app

import (
	"context"
	"log/slog"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"

	"github.com/keycap/keycap/app/autostart"
	"github.com/keycap/keycap/app/viewmodel"
)

// ui is the app's tray and windows. Its methods run on Fyne's goroutine.
type ui struct {
	app  fyne.App
	o    Options
	now  func() time.Time
	log  *slog.Logger
	view viewmodel.View

	// desk is the tray, nil when there is none.
	desk desktop.App
	tray *trayMenu
	// hostPresent says whether a tray host shows the icon now; closing
	// the dashboard hides it only then, or the app would be unreachable.
	hostPresent func() bool

	dash     *dashboard
	settings *settingsWindow
	token    *tokenWindow

	// async runs slow work (the keychain, the network) off Fyne's
	// goroutine; its results come back through fyne.Do. Tests run it in
	// line, because the test driver's fyne.Do does not serialise.
	async func(func())
}

func newUI(a fyne.App, o Options, tray bool) *ui {
	u := &ui{app: a, o: o, now: o.Now, log: o.Logger, hostPresent: func() bool { return false }, async: func(f func()) { go f() }}
	if u.now == nil {
		u.now = time.Now
	}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	if u.o.Autostart == nil {
		if e, err := autostart.ForThisSystem(); err == nil {
			u.o.Autostart = e
		} else {
			u.log.Warn("start at login unavailable", "err", err)
		}
	}
	if desk, ok := a.(desktop.App); ok && tray {
		u.desk = desk
		u.hostPresent = trayHostPresent
	}
	u.dash = newDashboard(u)
	u.settings = newSettings(u)
	u.token = newTokenWindow(u)
	u.tray = newTrayMenu(u)
	return u
}

// feed is the view-model feed that drives the windows.
func (u *ui) feed() *viewmodel.Feed {
	home := u.o.Engine.Home()
	return &viewmodel.Feed{Engine: u.o.Engine, Now: u.now, CapIsDefault: func() bool { return capIsDefault(home) }}
}

// build reads the engine now, on the calling goroutine.
func (u *ui) build() viewmodel.View {
	return viewmodel.Build(context.Background(), u.o.Engine, u.now(), viewmodel.Options{CapIsDefault: capIsDefault(u.o.Engine.Home())})
}

// start shows the first figures, sets up the tray, and opens what a first
// run needs: the settings window when there is no key, the dashboard when
// there is no tray to come back to.
func (u *ui) start() {
	u.show(u.build())
	if u.desk != nil {
		u.desk.SetSystemTrayIcon(iconFor(u.view.Tray.State))
		u.desk.SetSystemTrayMenu(u.tray.menu)
	}
	if u.desk == nil || !u.hostPresent() {
		u.dash.window.Show()
	}
	if !u.view.Status.KeyPresent {
		u.openSettings()
	}
}

// show renders a view in the tray and the windows.
func (u *ui) show(v viewmodel.View) {
	old := u.view
	u.view = v
	u.tray.show(v.Tray)
	if u.desk != nil && (old.Tray.State != v.Tray.State || old.Status.Day == "") {
		u.desk.SetSystemTrayIcon(iconFor(v.Tray.State))
	}
	u.dash.show(v)
	u.settings.show(v)
}

// closeWindow hides a window while the tray can bring it back, and quits
// the app otherwise.
func (u *ui) closeWindow(w fyne.Window) func() {
	return func() {
		if u.desk != nil && u.hostPresent() {
			w.Hide()
			return
		}
		if w == u.dash.window {
			u.quit()
			return
		}
		w.Hide()
	}
}

// quit stops the app. It stops Fyne's driver without closing the windows
// first, as fyne.App.Quit would: Fyne 2.7.1 may still deliver a pointer
// event to a window it has marked closing, and crash on it.
func (u *ui) quit() {
	u.app.Driver().Quit()
}

func (u *ui) openDashboard() {
	u.dash.window.Show()
	u.dash.window.RequestFocus()
}

func (u *ui) openSettings() {
	u.settings.open(!u.view.Status.KeyPresent)
}

// togglePause is the kill switch. It runs at once, on the UI's goroutine:
// pausing is one small ledger write, and it must not wait behind anything.
func (u *ui) togglePause() {
	var err error
	if u.view.Status.Paused {
		err = u.o.Engine.Resume()
	} else {
		err = u.o.Engine.Pause("from the tray")
	}
	if err != nil {
		u.log.Error("pause or resume", "err", err)
		u.dash.flash(viewmodel.Sentence(err))
		u.openDashboard()
		return
	}
	// Show the new state now rather than at the feed's next turn.
	u.show(u.build())
}
