package autostart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnableDisable(t *testing.T) {
	tests := []struct {
		kind Kind
		file string
		want []string
	}{
		{XDG, "keycap.desktop", []string{"[Desktop Entry]\n", "Type=Application\n", `Exec="/opt/my apps/keycap"` + "\n", "X-GNOME-Autostart-enabled=true\n"}},
		{LaunchAgent, Label + ".plist", []string{"<string>" + Label + "</string>", "<string>/opt/my apps/keycap</string>", "<key>RunAtLoad</key>\n\t<true/>"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "autostart")
			e := &Entry{Kind: tt.kind, Exec: "/opt/my apps/keycap", Dir: dir}
			if on, err := e.Enabled(); err != nil || on {
				t.Fatalf("before Enable: enabled = %v, %v; want false", on, err)
			}
			if err := e.Enable(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("file lacks %q:\n%s", w, b)
				}
			}
			if on, err := e.Enabled(); err != nil || !on {
				t.Fatalf("after Enable: enabled = %v, %v; want true", on, err)
			}
			if !strings.Contains(e.Where(), filepath.Join(dir, tt.file)) {
				t.Errorf("Where() = %q, want it to name the file", e.Where())
			}
			for range 2 { // twice: removing what is gone is no error
				if err := e.Disable(); err != nil {
					t.Fatal(err)
				}
			}
			if on, err := e.Enabled(); err != nil || on {
				t.Fatalf("after Disable: enabled = %v, %v; want false", on, err)
			}
		})
	}
}

func TestExecLineQuoting(t *testing.T) {
	tests := []struct {
		exe  string
		args []string
		want string
	}{
		{"/usr/bin/keycap", nil, "/usr/bin/keycap"},
		{"/opt/my apps/keycap", nil, `"/opt/my apps/keycap"`},
		{"/opt/100%/keycap", nil, "/opt/100%%/keycap"},
		{`/opt/a"b$c/keycap`, []string{"--x"}, `"/opt/a\\"b\\$c/keycap" --x`},
		{`/opt/back\slash/keycap`, nil, `"/opt/back\\\\slash/keycap"`},
	}
	for _, tt := range tests {
		if got := execLine(tt.exe, tt.args); got != tt.want {
			t.Errorf("execLine(%q) = %s, want %s", tt.exe, got, tt.want)
		}
	}
}

func TestGoRunBuildIsRefused(t *testing.T) {
	e := &Entry{Kind: XDG, Exec: filepath.Join(os.TempDir(), "go-build123", "b001", "exe", "keycap"), Dir: t.TempDir()}
	if err := e.Enable(); err != ErrTemporary {
		t.Fatalf("Enable() = %v, want ErrTemporary", err)
	}
}

func TestForThisSystemFollowsXDGConfigHome(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	e, err := ForThisSystem()
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind == XDG && e.Dir != filepath.Join(dir, "autostart") {
		t.Fatalf("dir = %q, want %q", e.Dir, filepath.Join(dir, "autostart"))
	}
	if !filepath.IsAbs(e.Exec) {
		t.Fatalf("exec = %q, want an absolute path", e.Exec)
	}
}
