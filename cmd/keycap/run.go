package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/keycap/keycap/keystore"
	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/control"
	"github.com/keycap/keycap/watchdog/problem"
)

const usage = `keycap — a budget watchdog for the OpenAI API

Usage:
  keycap                      start the tray app (the engine plus a tray icon)
  keycap serve                run the engine without a window (proxy + control socket)
  keycap key set|status|rm    keep the OpenAI API key in the system keychain
  keycap key set --admin      keep an admin key too, to compare with OpenAI's own usage figures
  keycap key import-env FILE  move OPENAI_API_KEY out of a .env file into the keychain
  keycap token                print a short-lived token for a script
  keycap env                  print export lines for OPENAI_API_KEY and OPENAI_BASE_URL
  keycap exec -- CMD ARGS…    run CMD with a fresh token (label defaults to CMD)
  keycap status               today's spend, cap, reservations, by model and script
  keycap cap [DOLLARS]        show or set the daily cap
  keycap pause | resume       refuse every request at once / lift that
  keycap revoke ID | --all    revoke tokens
  keycap log                  recent requests
  keycap events               recent events (cap reached, pauses, recoveries)
  keycap sync                 read OpenAI's usage and costs now and compare them with keycap's
  keycap report [--day DAY] [--html FILE] [--png FILE]
                              write a day's incident report (chart, scripts, guards, OpenAI's figures)
  keycap allow ID | --all     lift a loop block (ids in keycap status)
  keycap rehearse on|off      send every request to keycap's free stand-in for OpenAI
  keycap exec --rehearse -- CMD  rehearse one script: free, priced as if real, with a summary

Add --json to status, log, events, token for stable machine-readable output.
Data directory: $KEYCAP_HOME, or your config directory + keycap.
`

// env is what every command gets: streams, the data directory, a logger
// and the keychain.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	home           string
	log            *slog.Logger
	keys           *keystore.Keys
}

func (e *env) client() *control.Client { return control.NewClient(e.home) }

// run is keycap's whole command line. It returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, log: slog.New(slog.DiscardHandler),
		keys: &keystore.Keys{Store: &keystore.Keyring{}}}
	var rest []string
	for i, a := range args {
		if a == "--debug" || a == "-debug" {
			e.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
			continue
		}
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		rest = append(rest, a)
	}
	home, err := config.Home()
	if err != nil {
		fmt.Fprintln(stderr, "keycap:", err)
		return 1
	}
	e.home = home
	cmd, cargs := "", rest
	if len(rest) > 0 {
		cmd, cargs = rest[0], rest[1:]
	}
	err = dispatch(ctx, e, cmd, cargs)
	var ex exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ex):
		return int(ex)
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintln(stderr, sentence(err))
	return 1
}

var errUsage = errors.New("usage")

// exitCode is a child's exit status that keycap passes on.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

func dispatch(ctx context.Context, e *env, cmd string, args []string) error {
	switch cmd {
	case "":
		return runTray(ctx, e, args)
	case "serve":
		return runServe(ctx, e, args)
	case "key":
		return runKey(ctx, e, args)
	case "token":
		return runToken(ctx, e, args)
	case "env":
		return runEnv(ctx, e, args)
	case "exec":
		return runExec(ctx, e, args)
	case "status":
		return runStatus(ctx, e, args)
	case "cap":
		return runCap(ctx, e, args)
	case "pause":
		return runPause(ctx, e, args, true)
	case "resume":
		return runPause(ctx, e, args, false)
	case "revoke":
		return runRevoke(ctx, e, args)
	case "log":
		return runLog(ctx, e, args)
	case "events":
		return runEvents(ctx, e, args)
	case "sync":
		return runSync(ctx, e, args)
	case "report":
		return runReport(ctx, e, args)
	case "rehearse":
		return runRehearse(ctx, e, args)
	case "allow":
		return runAllow(ctx, e, args)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(e.stdout, usage)
		return nil
	}
	fmt.Fprintf(e.stderr, "keycap: unknown command %q\n\n%s", cmd, usage)
	return errUsage
}

// sentence turns an error into the one line a person sees.
func sentence(err error) string {
	switch {
	case errors.Is(err, control.ErrNotRunning):
		return "keycap is not running: start it with `keycap serve` (or `keycap` for the tray app), then try again"
	}
	var pe *problem.Error
	if errors.As(err, &pe) {
		if pe.Code == problem.Internal {
			return "keycap: " + problem.MessageOf(err)
		}
		return "keycap: " + strings.TrimPrefix(pe.Message, "keycap: ")
	}
	return "keycap: " + strings.TrimPrefix(err.Error(), "keycap: ")
}

// flags returns a flag set that reports errors as a usage line.
func flags(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("keycap "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: keycap %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

func tooMany(e *env, fs *flag.FlagSet, max int) error {
	if fs.NArg() > max {
		fmt.Fprintf(e.stderr, "keycap %s: unexpected argument %q\n", strings.TrimPrefix(fs.Name(), "keycap "), fs.Arg(max))
		fs.Usage()
		return errUsage
	}
	return nil
}
