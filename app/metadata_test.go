package app

import (
	"testing"

	"github.com/BurntSushi/toml"
)

// TestFyneAppTomlMatches keeps FyneApp.toml, which `fyne package` reads, in
// step with the metadata the app sets at run time.
func TestFyneAppTomlMatches(t *testing.T) {
	var meta struct {
		Details struct {
			Icon, Name, ID, Version string
		}
	}
	if _, err := toml.DecodeFile("../FyneApp.toml", &meta); err != nil {
		t.Fatal(err)
	}
	d := meta.Details
	for _, c := range []struct{ name, got, want string }{
		{"Name", d.Name, Name}, {"ID", d.ID, ID}, {"Version", d.Version, Version}, {"Icon", d.Icon, "assets/icon.png"},
	} {
		if c.got != c.want {
			t.Errorf("FyneApp.toml %s = %q, want %q", c.name, c.got, c.want)
		}
	}
}
