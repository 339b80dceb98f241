// Command keycap-demo runs the tray app against keycap's stand-in for the
// OpenAI API, with a month of sample spend and a script that keeps spending
// on text-to-speech, so the app can be tried without an OpenAI account:
//
//	go run ./app/internal/demo/keycap-demo
//
// Its data lives in a temporary directory (or -home), never in yours.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keycap/keycap/app"
	"github.com/keycap/keycap/app/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "keycap-demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	home := flag.String("home", "", "data directory (default: a new temporary one)")
	every := flag.Duration("every", 20*time.Second, "how often the sample script spends (0: never)")
	noKey := flag.Bool("nokey", false, "start without a key, as on a first run")
	flag.Parse()
	if err := app.CheckDisplay(); err != nil {
		return err
	}
	if *home == "" {
		h, err := demo.TempHome()
		if err != nil {
			return err
		}
		defer os.RemoveAll(h)
		*home = h
	}
	d, err := demo.Open(demo.Options{Home: *home, Sample: true, NoKey: *noKey, Control: true})
	if err != nil {
		return err
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Engine.Run(ctx) }()
	if *every > 0 {
		go func() {
			t := time.NewTicker(*every)
			defer t.Stop()
			for {
				if err := d.Spend(ctx, "chatlog.py", 1); err != nil && ctx.Err() == nil {
					fmt.Fprintln(os.Stderr, "keycap-demo: the sample script was refused:", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	fmt.Fprintf(os.Stderr, "keycap-demo: data in %s, proxy %s\n", *home, d.Engine.ProxyURL())
	err = app.Run(ctx, app.Options{Engine: d.Engine, Keys: d.Keys})
	cancel()
	return errors.Join(err, <-done)
}
