// Package autostart makes keycap start when the user logs in: an XDG
// autostart .desktop file on Linux and the BSDs, a LaunchAgent on macOS and
// a value under the Run key of the user's registry on Windows. Nothing needs
// administrator rights; each is the user's own and removed by Disable.
package autostart

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Kind is a mechanism for starting a program at login.
type Kind int

// The mechanisms.
const (
	// XDG is a .desktop file in $XDG_CONFIG_HOME/autostart (freedesktop.org
	// Desktop Application Autostart), which GNOME, KDE, Xfce and others
	// read.
	XDG Kind = iota + 1
	// LaunchAgent is a property list in ~/Library/LaunchAgents that launchd
	// runs at login (RunAtLoad).
	LaunchAgent
	// Registry is a value under HKCU\Software\Microsoft\Windows\
	// CurrentVersion\Run, which Explorer runs at login.
	Registry
)

// Name is the file name stem and registry value keycap's entry is stored
// under.
const Name = "keycap"

// Label is the LaunchAgent's label.
const Label = "io.github.keycap.keycap"

// Entry is keycap's start-at-login entry for the current user.
type Entry struct {
	Kind Kind
	// Exec is the absolute path of the program to start.
	Exec string
	// Args follow Exec; keycap starts the tray app with none.
	Args []string
	// Dir is where the XDG or LaunchAgent file goes.
	Dir string
}

// ErrTemporary means keycap runs from a build that will not be there at the
// next login (go run), so there is nothing sensible to start.
var ErrTemporary = errors.New("keycap is running from a temporary build (go run): install it first (go install ./cmd/keycap, or a package), then turn on Start at login from the installed keycap")

// ForThisSystem returns the entry for this operating system and user, to
// start the running executable.
func ForThisSystem() (*Entry, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find keycap's own program file: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	e := &Entry{Exec: exe}
	switch runtime.GOOS {
	case "darwin":
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, err
		}
		e.Kind, e.Dir = LaunchAgent, filepath.Join(home, "Library", "LaunchAgents")
	case "windows":
		e.Kind = Registry
	default:
		dir := os.Getenv("XDG_CONFIG_HOME")
		if dir == "" || !filepath.IsAbs(dir) {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, err
			}
			dir = filepath.Join(home, ".config")
		}
		e.Kind, e.Dir = XDG, filepath.Join(dir, "autostart")
	}
	return e, nil
}

// Where says in words where the entry lives.
func (e *Entry) Where() string {
	switch e.Kind {
	case XDG:
		return "an autostart entry, " + e.path()
	case LaunchAgent:
		return "a LaunchAgent, " + e.path()
	case Registry:
		return `a value named keycap under HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\Run`
	}
	return "nowhere"
}

func (e *Entry) path() string {
	switch e.Kind {
	case XDG:
		return filepath.Join(e.Dir, Name+".desktop")
	case LaunchAgent:
		return filepath.Join(e.Dir, Label+".plist")
	}
	return ""
}

// Enabled reports whether the entry is installed.
func (e *Entry) Enabled() (bool, error) {
	if e.Kind == Registry {
		return registryEnabled()
	}
	_, err := os.Stat(e.path())
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("check start at login: %w", err)
}

// Enable installs the entry, replacing an older one.
func (e *Entry) Enable() error {
	if temporary(e.Exec) {
		return ErrTemporary
	}
	if !filepath.IsAbs(e.Exec) {
		return fmt.Errorf("start at login needs the program's absolute path, not %q", e.Exec)
	}
	var content []byte
	switch e.Kind {
	case XDG:
		content = e.desktopFile()
	case LaunchAgent:
		content = e.plist()
	case Registry:
		return registryEnable(commandLine(e.Exec, e.Args))
	default:
		return errors.New("start at login is not supported on this system")
	}
	if err := os.MkdirAll(e.Dir, 0o755); err != nil {
		return fmt.Errorf("turn on start at login: %w", err)
	}
	if err := writeFile(e.path(), content); err != nil {
		return fmt.Errorf("turn on start at login: %w", err)
	}
	return nil
}

// Disable removes the entry; removing one that is not there is no error.
func (e *Entry) Disable() error {
	if e.Kind == Registry {
		return registryDisable()
	}
	if err := os.Remove(e.path()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("turn off start at login: %w", err)
	}
	return nil
}

// temporary reports whether exe is a `go run` build in the temp directory.
func temporary(exe string) bool {
	return strings.HasPrefix(exe, filepath.Clean(os.TempDir())+string(filepath.Separator)) &&
		strings.Contains(exe, "go-build")
}

func writeFile(path string, content []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keycap-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// desktopFile is the XDG autostart entry.
func (e *Entry) desktopFile() []byte {
	var b bytes.Buffer
	b.WriteString("[Desktop Entry]\n")
	b.WriteString("Type=Application\n")
	b.WriteString("Name=keycap\n")
	b.WriteString("Comment=Budget watchdog for the OpenAI API\n")
	fmt.Fprintf(&b, "Exec=%s\n", execLine(e.Exec, e.Args))
	b.WriteString("Icon=" + Label + "\n") // the name `fyne package` installs the icon under
	b.WriteString("Terminal=false\n")
	b.WriteString("Categories=Utility;Development;\n")
	b.WriteString("X-GNOME-Autostart-enabled=true\n")
	return b.Bytes()
}

// execLine quotes a command for a .desktop file's Exec key: each argument
// with reserved characters in double quotes, with `"`, "`", "$" and "\"
// escaped by a backslash, and "%" doubled everywhere (it starts a field
// code).
func execLine(exe string, args []string) string {
	parts := make([]string, 0, 1+len(args))
	for _, a := range append([]string{exe}, args...) {
		a = strings.ReplaceAll(a, "%", "%%")
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\><~|&;$*?#()`") {
			var q strings.Builder
			q.WriteByte('"')
			for _, r := range a {
				if strings.ContainsRune("\"`$\\", r) {
					q.WriteByte('\\')
				}
				q.WriteRune(r)
			}
			q.WriteByte('"')
			a = q.String()
		}
		parts = append(parts, a)
	}
	// The Exec key is itself a string value, whose own escapes apply after
	// the quoting above: a backslash is written twice.
	return strings.ReplaceAll(strings.Join(parts, " "), `\`, `\\`)
}

// plist is the LaunchAgent.
func (e *Entry) plist() []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>` + Label + `</string>
	<key>ProgramArguments</key>
	<array>
`)
	for _, a := range append([]string{e.Exec}, e.Args...) {
		fmt.Fprintf(&b, "\t\t<string>%s</string>\n", xmlEscape(a))
	}
	b.WriteString(`	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>ProcessType</key>
	<string>Interactive</string>
</dict>
</plist>
`)
	return b.Bytes()
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(s)
}

// commandLine quotes a command for the Windows Run key.
func commandLine(exe string, args []string) string {
	parts := make([]string, 0, 1+len(args))
	for _, a := range append([]string{exe}, args...) {
		parts = append(parts, `"`+strings.ReplaceAll(a, `"`, `\"`)+`"`)
	}
	return strings.Join(parts, " ")
}
