package viewmodel

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/problem"
)

// Settings is the settings form as text, field by field, the way a person
// types it.
type Settings struct {
	// Cap is the daily cap in dollars: "5.00".
	Cap string
	// WarnAt lists the warning thresholds in percent: "50, 80, 100".
	WarnAt string
	// Timezone is an IANA name, or "" for the system's zone.
	Timezone string
	// Upstream is the API base URL.
	Upstream string
	// TokenTTL is how long a new token lives: "1h", "30m".
	TokenTTL string
}

// SettingsOf fills the form from cfg.
func SettingsOf(cfg config.Config) Settings {
	warn := make([]string, len(cfg.WarnAt))
	for i, f := range cfg.WarnAt {
		warn[i] = strconv.FormatFloat(math.Round(f*1000)/10, 'f', -1, 64)
	}
	return Settings{
		Cap:      fmt.Sprintf("%.2f", cfg.Cap().Dollars()),
		WarnAt:   strings.Join(warn, ", "),
		Timezone: cfg.Timezone,
		Upstream: cfg.Upstream,
		TokenTTL: ShortDuration(cfg.TokenTTL.Duration),
	}
}

// ShortDuration writes d without zero units: 1h, 1h30m, 45s.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Apply returns cfg changed by the form, or an error naming the field at
// fault (show it with [Sentence]). The other settings of cfg (listen
// address, prices...) are kept.
func (s Settings) Apply(cfg config.Config) (config.Config, error) {
	c, err := ParseCap(s.Cap)
	if err != nil {
		return cfg, err
	}
	warn, err := ParseWarnAt(s.WarnAt)
	if err != nil {
		return cfg, err
	}
	if err := CheckTimezone(s.Timezone); err != nil {
		return cfg, err
	}
	if err := CheckUpstream(s.Upstream); err != nil {
		return cfg, err
	}
	ttl, err := ParseTTL(s.TokenTTL)
	if err != nil {
		return cfg, err
	}
	cfg.DailyCapUSD = c.Dollars()
	cfg.WarnAt = warn
	cfg.Timezone = strings.TrimSpace(s.Timezone)
	cfg.Upstream = strings.TrimSpace(s.Upstream)
	cfg.TokenTTL = config.Duration{Duration: ttl}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("these settings were refused: %w", err)
	}
	return cfg, nil
}

// ParseCap reads the daily cap field.
func ParseCap(s string) (money.USD, error) {
	v, err := money.Parse(s)
	if err != nil {
		return 0, errors.New("the daily cap must be an amount in dollars, like 5 or 12.50")
	}
	if v > 1_000_000*money.Dollar {
		return 0, errors.New("the daily cap must be at most $1000000")
	}
	return v, nil
}

// ParseWarnAt reads the warning thresholds: percentages of the cap between
// 1 and 100, separated by commas or spaces; the result is sorted fractions.
func ParseWarnAt(s string) ([]float64, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == ';' })
	out := make([]float64, 0, len(fields))
	for _, f := range fields {
		p, err := strconv.ParseFloat(strings.TrimSuffix(f, "%"), 64)
		if err != nil || math.IsNaN(p) || p <= 0 || p > 100 {
			return nil, fmt.Errorf("warning thresholds are percentages of the cap between 1 and 100, like 50, 80, 100; %q is not one", f)
		}
		out = append(out, p/100)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// CheckTimezone checks the timezone field: empty, or an IANA zone name.
func CheckTimezone(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	if _, err := (config.Config{Timezone: s}).Location(); err != nil {
		return fmt.Errorf("%q is not a time zone keycap knows: use a name like Europe/Berlin or America/New_York, or leave it empty for the system's", s)
	}
	return nil
}

// CheckUpstream checks the upstream URL field.
func CheckUpstream(s string) error {
	if err := config.CheckUpstream(strings.TrimSpace(s)); err != nil {
		return fmt.Errorf("the upstream must be a URL like %s", config.DefaultUpstream)
	}
	return nil
}

// ParseTTL reads the token lifetime field: a duration like 1h or 30m, at
// most 24h.
func ParseTTL(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < time.Second || d > config.MaxTokenTTL {
		return 0, errors.New("a token's lifetime is a duration like 1h or 30m, between 1s and 24h")
	}
	return d, nil
}

// Sentence turns an error into the sentence a window shows, starting with
// a capital and ending with a full stop. The engine's coded errors show only
// the message a person may see (problem.MessageOf keeps an internal error's
// detail back); other errors, the form's and the keychain's, are sentences
// already.
func Sentence(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	var pe *problem.Error
	if errors.As(err, &pe) {
		msg = problem.MessageOf(err)
	}
	msg = strings.TrimSpace(strings.TrimPrefix(msg, "keycap: "))
	if msg == "" {
		return ""
	}
	r, n := utf8.DecodeRuneInString(msg)
	msg = string(unicode.ToUpper(r)) + msg[n:]
	if !strings.HasSuffix(msg, ".") && !strings.HasSuffix(msg, "!") && !strings.HasSuffix(msg, "?") {
		msg += "."
	}
	return msg
}
