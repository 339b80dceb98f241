package guard_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/keycap/keycap/watchdog/guard"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*guard.Config)
		want string // part of the error, "" for valid
	}{
		{"defaults", func(*guard.Config) {}, ""},
		{"all off", func(c *guard.Config) {
			*c = guard.Config{}
		}, ""},
		{"warn only", func(c *guard.Config) { c.LoopBlockAt = 0 }, ""},
		{"block only", func(c *guard.Config) { c.LoopWarnAt = 0 }, ""},
		{"warn at 1", func(c *guard.Config) { c.LoopWarnAt = 1 }, "guards.loop_warn_at"},
		{"block at 1", func(c *guard.Config) { c.LoopWarnAt, c.LoopBlockAt = 0, 1 }, "guards.loop_block_at"},
		{"negative", func(c *guard.Config) { c.RetryStormAt = -1 }, "guards.retry_storm_at"},
		{"huge", func(c *guard.Config) { c.LoopBlockAt = 100000 }, "guards.loop_block_at"},
		{"warn not below block", func(c *guard.Config) { c.LoopWarnAt = 5 }, "must be below"},
		{"no loop window", func(c *guard.Config) { c.LoopWindow = 0 }, "guards.loop_window"},
		{"loop window off when guard off", func(c *guard.Config) { c.LoopWarnAt, c.LoopBlockAt, c.LoopWindow = 0, 0, 0 }, ""},
		{"week-long window", func(c *guard.Config) { c.RateWindow = 7 * 24 * time.Hour }, "guards.rate_window"},
		{"fraction over 1", func(c *guard.Config) { c.RateFraction = 1.5 }, "guards.rate_fraction"},
		{"negative $/min", func(c *guard.Config) { c.RateUSDPerMin = -1 }, "guards.rate_usd_per_min"},
		{"no retry window", func(c *guard.Config) { c.RetryWindow = 0 }, "guards.retry_window"},
		{"threshold 0", func(c *guard.Config) { c.Thresholds = []float64{0, 0.5} }, "guards.thresholds"},
		{"threshold 120%", func(c *guard.Config) { c.Thresholds = []float64{1.2} }, "guards.thresholds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := guard.DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want an error about %s", err, tt.want)
			}
			if _, nerr := guard.New(c); (nerr == nil) != (err == nil) {
				t.Fatalf("New = %v, Validate = %v", nerr, err)
			}
		})
	}
}

// TestConfigTOML checks the [guards] section of config.toml: keys missing
// keep their defaults, and thresholds are not read there (they are the
// top-level warn_at list).
func TestConfigTOML(t *testing.T) {
	var file struct {
		Guards guard.Config `toml:"guards"`
	}
	file.Guards = guard.DefaultConfig()
	const src = `
[guards]
loop_block_at = 8
loop_window = "30m"
rate_usd_per_min = 0.5
`
	if _, err := toml.Decode(src, &file); err != nil {
		t.Fatal(err)
	}
	want := guard.DefaultConfig()
	want.LoopBlockAt, want.LoopWindow, want.RateUSDPerMin = 8, 30*time.Minute, 0.5
	if got := file.Guards; got.LoopWarnAt != want.LoopWarnAt || got.LoopBlockAt != want.LoopBlockAt || got.LoopWindow != want.LoopWindow ||
		got.RateWindow != want.RateWindow || got.RateFraction != want.RateFraction || got.RateUSDPerMin != want.RateUSDPerMin ||
		got.RetryStormAt != want.RetryStormAt || got.RetryWindow != want.RetryWindow || len(got.Thresholds) != 3 {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}

	var buf bytes.Buffer
	file.Guards = guard.DefaultConfig()
	if err := toml.NewEncoder(&buf).Encode(file); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`loop_warn_at = 3`, `loop_block_at = 5`, `loop_window = "10m0s"`, `rate_window = "5m0s"`,
		`rate_fraction = 0.2`, `rate_usd_per_min = 0.0`, `retry_storm_at = 10`, `retry_window = "1m0s"`} {
		if !strings.Contains(buf.String(), line) {
			t.Errorf("encoded defaults lack %q:\n%s", line, buf.String())
		}
	}
}

func TestSetConfigInvalidKeepsOld(t *testing.T) {
	g, _ := mustGuard(t, guard.DefaultConfig())
	bad := guard.DefaultConfig()
	bad.LoopWindow = -time.Second
	if err := g.SetConfig(bad); err == nil {
		t.Fatal("SetConfig accepted a negative window")
	}
	if got := g.Config().LoopWindow; got != 10*time.Minute {
		t.Fatalf("window = %v after a refused change", got)
	}
}
