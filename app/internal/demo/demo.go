// Package demo runs keycap's engine against the stand-in OpenAI API with a
// month of sample spend, so the app can be shown, tested and photographed
// without an OpenAI account: the key is the stand-in's, the spend is made
// up (package sampledata) plus real requests through the proxy.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/keycap/keycap/app/internal/sampledata"
	"github.com/keycap/keycap/keystore"
	"github.com/keycap/keycap/watchdog"
	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/standin"
)

// Key is the stand-in's API key. It is not a real key.
const Key = "sk-proj-" + "DEMOdemoDEMOdemoDEMOdemoDEMOdemoDEMOdemo0000wxyz"

// Options configure a demo.
type Options struct {
	// Home is the data directory; it is created if needed.
	Home string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Sample fills an empty ledger with a month of sample spend.
	Sample bool
	// NoKey starts with an empty keychain, as on a first run.
	NoKey bool
	// Config changes the configuration before the engine opens.
	Config func(*config.Config)
	// Control opens the engine's control socket, for `keycap status` and
	// tests in other processes.
	Control bool
	// Logger receives the engine's diagnostics (default: discard).
	Logger *slog.Logger
}

// Demo is an engine in front of the stand-in, with a keychain in memory.
type Demo struct {
	Engine   *watchdog.Watchdog
	Keys     *keystore.Keys
	Upstream *httptest.Server
	Home     string
}

// Open starts the stand-in, writes config.toml (cap $5, a free port, the
// stand-in as upstream), fills the ledger and opens the engine. Run the
// engine with Engine.Run; Close stops everything.
func Open(o Options) (*Demo, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	d := &Demo{Home: o.Home, Keys: &keystore.Keys{Store: &keystore.Memory{}, Now: o.Now}}
	d.Upstream = httptest.NewServer(standin.New(standin.Options{APIKey: Key, Now: o.Now}))
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()
	if err := config.EnsureHome(o.Home); err != nil {
		return nil, err
	}
	path := filepath.Join(o.Home, config.FileName)
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.Upstream = d.Upstream.URL + "/v1"
	if o.Config != nil {
		o.Config(&cfg)
	}
	if err := config.Save(path, cfg); err != nil {
		return nil, err
	}
	if !o.NoKey {
		if err := d.Keys.SetAPIKey(Key); err != nil {
			return nil, err
		}
	}
	if o.Sample {
		if err := sample(o.Home, o.Now(), cfg); err != nil {
			return nil, err
		}
	}
	d.Engine, err = watchdog.Open(watchdog.Options{
		Home: o.Home, Now: o.Now, NoControl: !o.Control, Logger: o.Logger,
		Key: func() (string, error) {
			k, err := d.Keys.APIKey()
			return k.Value, err
		},
	})
	if err != nil {
		return nil, err
	}
	ok = true
	return d, nil
}

// sample fills an empty ledger before the engine opens it (the engine
// loads today's figures at Open).
func sample(home string, now time.Time, cfg config.Config) error {
	ctx := context.Background()
	db, err := ledger.Open(filepath.Join(home, "ledger.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	if es, err := db.Recent(ctx, 1); err != nil || len(es) > 0 {
		return err
	}
	loc, err := cfg.Location()
	if err != nil {
		return err
	}
	if _, err := (sampledata.Writer{DB: db, Loc: loc}).Month(ctx, now, cfg.Cap()); err != nil {
		return fmt.Errorf("write sample spend: %w", err)
	}
	return nil
}

// Spend makes n text-to-speech requests through the engine's proxy with a
// token labelled label, as a looping script would. Each is metered and
// charged for real (by the stand-in's prices).
func (d *Demo) Spend(ctx context.Context, label string, n int) error {
	tok, _, err := d.Engine.IssueToken(ctx, label, time.Hour, 0)
	if err != nil {
		return err
	}
	cfg := openai.DefaultConfig(tok)
	cfg.BaseURL = d.Engine.ProxyURL()
	c := openai.NewClientWithConfig(cfg)
	text := strings.Repeat("Keycap reads the chat log aloud again. ", 100)
	for range n {
		resp, err := c.CreateSpeech(ctx, openai.CreateSpeechRequest{Model: openai.TTSModel1, Input: text, Voice: openai.VoiceAlloy})
		if err != nil {
			return err
		}
		resp.Close()
	}
	return nil
}

// Close closes the engine and stops the stand-in.
func (d *Demo) Close() {
	if d.Engine != nil {
		d.Engine.Close()
	}
	if d.Upstream != nil {
		d.Upstream.Close()
	}
}

// TempHome makes a temporary data directory for a demo.
func TempHome() (string, error) {
	dir, err := os.MkdirTemp("", "keycap-demo-")
	if err != nil {
		return "", errors.Join(errors.New("make a data directory for the demo"), err)
	}
	return dir, nil
}
