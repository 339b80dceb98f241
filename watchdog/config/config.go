// Package config reads and writes keycap's config.toml and finds its data
// directory.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/keycap/keycap/watchdog/guard"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/pricing"
	"github.com/keycap/keycap/watchdog/reconcile"
)

// Defaults.
const (
	DefaultCap      = 5 * money.Dollar
	DefaultListen   = "127.0.0.1:8744"
	DefaultUpstream = "https://api.openai.com/v1"
	DefaultTokenTTL = time.Hour
	MaxTokenTTL     = 24 * time.Hour
	FileName        = "config.toml"
)

// DefaultFallback is the price charged for models with no known price when
// the user opts in: as dear as the dearest common model, so it is never low.
var DefaultFallback = pricing.Price{InputPerToken: 15e-6, OutputPerToken: 60e-6, MaxOutputTokens: 32_768}

// Config is the contents of config.toml.
type Config struct {
	// DailyCapUSD is the hard daily cap in dollars.
	DailyCapUSD float64 `toml:"daily_cap_usd"`
	// Timezone decides where the cap's day ends: an IANA name, or "" for
	// the system's zone.
	Timezone string `toml:"timezone"`
	// Listen is the proxy's loopback address.
	Listen string `toml:"listen"`
	// Upstream is the API base URL the proxy forwards to.
	Upstream string `toml:"upstream"`
	// TokenTTL is how long a token lives unless asked otherwise.
	TokenTTL Duration `toml:"token_ttl"`
	// WarnAt lists the fractions of the cap at which to warn.
	WarnAt []float64 `toml:"warn_at"`
	// FallbackPrice charges models with no known price at Fallback instead
	// of refusing them.
	FallbackPrice bool          `toml:"fallback_price"`
	Fallback      pricing.Price `toml:"fallback"`
	// Prices adds or replaces price cards, by model name, with LiteLLM's
	// field names (input_cost_per_token, output_cost_per_token, …).
	Prices map[string]pricing.Price `toml:"prices"`
	// Reconcile compares keycap's figures with OpenAI's organization usage
	// and costs (with an admin key).
	Reconcile reconcile.Config `toml:"reconcile"`
	// AllowOrigins lists browser origins allowed to call the proxy.
	AllowOrigins []string `toml:"allow_origins"`
	// Guards are the loop guard, the spend-rate breaker and the retry-storm
	// alarm; their thresholds are WarnAt.
	Guards guard.Config `toml:"guards"`
}

// GuardConfig returns the guards' settings with the warning thresholds.
func (c Config) GuardConfig() guard.Config {
	g := c.Guards
	g.Thresholds = c.WarnAt
	return g
}

// Duration is a time.Duration written as "1h30m" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like 1h or 30m", b)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the configuration of a new install.
func Default() Config {
	return Config{
		DailyCapUSD: DefaultCap.Dollars(),
		Listen:      DefaultListen,
		Upstream:    DefaultUpstream,
		TokenTTL:    Duration{DefaultTokenTTL},
		WarnAt:      []float64{0.5, 0.8, 1.0},
		Reconcile:   reconcile.DefaultConfig(),
		Guards:      guard.DefaultConfig(),
	}
}

// Cap returns the daily cap.
func (c Config) Cap() money.USD { return money.FromFloat(c.DailyCapUSD) }

// Location returns the time zone of the cap's day.
func (c Config) Location() (*time.Location, error) {
	if c.Timezone == "" || c.Timezone == "Local" {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return nil, fmt.Errorf("timezone %q is not a known time zone (use a name like Europe/Berlin)", c.Timezone)
	}
	return loc, nil
}

// FallbackCard returns the fallback price card, or nil when unknown models
// are refused.
func (c Config) FallbackCard() *pricing.Price {
	if !c.FallbackPrice {
		return nil
	}
	p := c.Fallback
	if p.IsZero() {
		p = DefaultFallback
	}
	return &p
}

// Validate reports the first problem with c as a sentence.
func (c Config) Validate() error {
	if c.DailyCapUSD < 0 || c.DailyCapUSD > 1e6 {
		return fmt.Errorf("daily_cap_usd must be between 0 and 1000000 dollars, not %v", c.DailyCapUSD)
	}
	if _, err := c.Location(); err != nil {
		return err
	}
	if err := CheckListen(c.Listen); err != nil {
		return err
	}
	if err := CheckUpstream(c.Upstream); err != nil {
		return err
	}
	if err := c.Reconcile.Validate(); err != nil {
		return err
	}
	if c.TokenTTL.Duration <= 0 || c.TokenTTL.Duration > MaxTokenTTL {
		return fmt.Errorf("token_ttl must be more than 0 and at most 24h, not %s", c.TokenTTL)
	}
	for _, f := range c.WarnAt {
		if f <= 0 || f > 1 {
			return fmt.Errorf("warn_at values are fractions of the cap between 0 and 1, not %v", f)
		}
	}
	return c.GuardConfig().Validate()
}

// CheckListen checks that addr is a loopback host:port.
func CheckListen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q must be host:port, like %s", addr, DefaultListen)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q is not on loopback: keycap only listens on 127.0.0.1 or ::1, so nothing else on the network can use your key", addr)
	}
	return nil
}

// CheckUpstream checks that u is an http(s) URL.
func CheckUpstream(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return fmt.Errorf("upstream %q must be a URL like %s", u, DefaultUpstream)
	}
	if p.User != nil {
		return fmt.Errorf("upstream URL must not carry credentials")
	}
	return nil
}

// Load reads the config file at path; a missing file gives the defaults.
func Load(path string) (Config, error) {
	c := Default()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read %s: %w", path, err)
	}
	md, err := toml.Decode(string(b), &c)
	if err != nil {
		return c, fmt.Errorf("%s: %v", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return c, fmt.Errorf("%s: unknown setting %q", path, und[0].String())
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Save writes c to path atomically, readable by the user only.
func Save(path string, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString("# keycap settings. The API key is not here: it lives in the system keychain.\n")
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.toml")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

// Home returns keycap's data directory: $KEYCAP_HOME, else the OS config
// directory plus "keycap".
func Home() (string, error) {
	if h := strings.TrimSpace(os.Getenv("KEYCAP_HOME")); h != "" {
		return filepath.Abs(h)
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find a config directory: %w; set KEYCAP_HOME", err)
	}
	return filepath.Join(d, "keycap"), nil
}

// EnsureHome creates the data directory, private to the user.
func EnsureHome(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory %s: %w", dir, err)
	}
	return os.Chmod(dir, 0o700)
}
