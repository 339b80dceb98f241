package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadMissingGivesDefaults(t *testing.T) {
	c, err := Load(filepath.Join(t.TempDir(), "none.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Cap().String(), "$5.00"; got != want {
		t.Errorf("cap = %s, want %s", got, want)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	c := Default()
	c.DailyCapUSD = 2.5
	c.Timezone = "Asia/Tokyo"
	c.TokenTTL = Duration{30 * time.Minute}
	c.FallbackPrice = true
	if err := Save(path, c); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.DailyCapUSD != 2.5 || got.Timezone != "Asia/Tokyo" || got.TokenTTL.Duration != 30*time.Minute || got.FallbackCard() == nil {
		t.Errorf("round trip = %+v", got)
	}
}

func TestLoadRefusesBadSettings(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`listen = "0.0.0.0:80"`, "not on loopback"},
		{`upstream = "ftp://x"`, "must be a URL"},
		{`timezone = "Mars/Olympus"`, "not a known time zone"},
		{`token_ttl = "48h"`, "at most 24h"},
		{`daily_cap_usd = -1`, "between 0"},
		{`dialy_cap_usd = 1`, "unknown setting"},
		{`daily_cap_usd = "five"`, "config.toml"},
		{"[prices.\"my-model\"]\ninput_cost_per_token = 1e-6\n", ""},
	} {
		path := filepath.Join(t.TempDir(), FileName)
		os.WriteFile(path, []byte(tt.body), 0o600)
		_, err := Load(path)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.body, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to say %q", tt.body, err, tt.want)
		}
	}
}
