//go:build !((linux || freebsd || openbsd || netbsd) && !android)

package app

// trayAvailable reports whether a tray can be set up: macOS and Windows
// always have one.
func trayAvailable() bool { return true }

// trayHostPresent reports whether the tray is shown: always, here.
func trayHostPresent() bool { return true }

// menuText is a label as the menu shows it.
func menuText(s string) string { return s }

// CheckDisplay returns an error, a sentence, when there is no desktop to
// show the tray and windows on; macOS and Windows always have one.
func CheckDisplay() error { return nil }
