package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/keycap/keycap/keystore"
	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/pricing"
	"github.com/keycap/keycap/watchdog/problem"
	"github.com/keycap/keycap/watchdog/reconcile"
	"github.com/keycap/keycap/watchdog/report"
)

// runReport writes the report of one day from the ledger file itself, so
// it works whether or not the engine runs (the ledger is in WAL mode: a
// reader never blocks the engine).
func runReport(ctx context.Context, e *env, args []string) error {
	fl := flags(e, "report", "[--day YYYY-MM-DD] [--html FILE] [--png FILE] [--offline]")
	day := fl.String("day", "", "the day to report, in the cap's time zone (default today)")
	htmlOut := fl.String("html", "", "write the report as one self-contained HTML page (default keycap-report-DAY.html)")
	pngOut := fl.String("png", "", "write the spend chart as a PNG image")
	offline := fl.Bool("offline", false, "leave out OpenAI's own figures (they need an admin key and the network)")
	if err := parse(fl, args); err != nil {
		return err
	}
	if err := tooMany(e, fl, 0); err != nil {
		return err
	}
	cfg, err := config.Load(filepath.Join(e.home, config.FileName))
	if err != nil {
		return err
	}
	loc, err := cfg.Location()
	if err != nil {
		return err
	}
	if *day == "" {
		*day = time.Now().In(loc).Format(time.DateOnly)
	} else if _, err := time.ParseInLocation(time.DateOnly, *day, loc); err != nil {
		return fmt.Errorf("--day takes a day like 2025-04-23, not %q", *day)
	}
	path := filepath.Join(e.home, "ledger.db")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("there is no ledger in %s yet, so nothing to report: run scripts through keycap first", e.home)
	}
	db, err := ledger.Open(path)
	if err != nil {
		return err
	}
	defer db.Close()

	o := report.Options{Location: loc, Cap: cfg.Cap()}
	if *offline {
		o.OpenAINote = "OpenAI's own figures were left out of this report (--offline)."
	} else {
		o.OpenAI, o.OpenAINote = openAIFigures(ctx, e, cfg, loc, db, *day)
	}
	r, err := report.Build(ctx, db, *day, o)
	if err != nil {
		return err
	}
	if *htmlOut == "" && *pngOut == "" {
		*htmlOut = "keycap-report-" + *day + ".html"
	}
	fmt.Fprintln(e.stdout, r.Headline())
	if o.OpenAI != nil {
		for _, line := range o.OpenAI.Summary(loc) {
			fmt.Fprintln(e.stdout, line)
		}
	} else {
		fmt.Fprintln(e.stdout, o.OpenAINote)
	}
	for _, out := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{*htmlOut, func(b *bytes.Buffer) error { return r.WriteHTML(b) }},
		{*pngOut, func(b *bytes.Buffer) error { return r.WriteChart(b) }},
	} {
		if out.name == "" {
			continue
		}
		var b bytes.Buffer
		if err := out.write(&b); err != nil {
			return err
		}
		if err := os.WriteFile(out.name, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write the report: %w", err)
		}
		fmt.Fprintf(e.stdout, "Wrote %s\n", out.name)
	}
	return nil
}

// openAIFigures reads OpenAI's usage and costs for day with the admin key,
// or says in one sentence why it could not.
func openAIFigures(ctx context.Context, e *env, cfg config.Config, loc *time.Location, db *ledger.DB, day string) (*reconcile.Snapshot, string) {
	key, err := e.keys.AdminKey()
	if errors.Is(err, keystore.ErrNotFound) {
		return nil, "OpenAI's own figures are not in this report: " + reconcile.NeedsAdminKey("none is stored").Message + "."
	}
	if err != nil {
		return nil, "OpenAI's own figures are not in this report: " + sentence(err) + "."
	}
	prices, err := pricing.Load(cfg.Prices, cfg.FallbackCard())
	if err != nil {
		return nil, "OpenAI's own figures are not in this report: " + sentence(err) + "."
	}
	rc := reconcile.New(reconcile.Options{
		Client: &reconcile.Client{BaseURL: cfg.Upstream, Key: func() (string, error) { return key.Value, nil },
			Retries: 2, MaxWait: 20 * time.Second, Logger: e.log},
		Prices: prices, Ledger: db, Location: loc, Config: reconcile.DefaultConfig(), Logger: e.log,
	})
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	s, err := rc.Day(ctx, day)
	if err != nil {
		return nil, "OpenAI's own figures are not in this report: " + problem.MessageOf(err) + "."
	}
	return &s, ""
}
