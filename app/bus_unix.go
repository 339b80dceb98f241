//go:build (linux || freebsd || openbsd || netbsd) && !android

package app

import (
	"os"
	"strings"

	"github.com/godbus/dbus/v5"
)

// watcherName is the tray host's name on the session bus (the
// StatusNotifierItem protocol that Fyne's tray speaks).
const watcherName = "org.kde.StatusNotifierWatcher"

// trayAvailable reports whether a tray can be set up: Fyne's tray talks to
// the desktop over the session bus, and it panics when it quits without
// one, so without a bus keycap runs with its windows only.
func trayAvailable() bool {
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// trayHostPresent reports whether a tray host (a panel that shows
// StatusNotifierItems) is on the session bus now.
func trayHostPresent() bool {
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return false
	}
	defer conn.Close()
	var has bool
	if err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, watcherName).Store(&has); err != nil {
		return false
	}
	return has
}

// menuText escapes a label for the D-Bus menu, where "_" marks the
// keyboard accelerator: a script called my_job.py must not lose its
// underscore.
func menuText(s string) string { return strings.ReplaceAll(s, "_", "__") }

// CheckDisplay returns an error, a sentence, when there is no desktop to
// show the tray and windows on.
func CheckDisplay() error {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return errNoDisplay
	}
	return nil
}
