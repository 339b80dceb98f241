package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keycap/keycap/keystore"
	"github.com/keycap/keycap/keystore/dotenv"
	"github.com/keycap/keycap/watchdog/control"
)

func runKey(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, "Usage: keycap key set [--admin] | status | rm [--admin] | import-env [FILE] [--backup]")
		return errUsage
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "set":
		fs := flags(e, "key set", "[--admin] (reads the key from stdin; never pass it as an argument)")
		admin := fs.Bool("admin", false, "store an OpenAI admin key (sk-admin-…), which lets keycap compare its figures with OpenAI's usage and costs")
		if err := parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return errors.New("the key is read from stdin, never from the command line (where other users and your shell history could see it): run `keycap key set` and paste it, or pipe it in")
		}
		if *admin {
			return setAdminKey(ctx, e)
		}
		key, err := keystore.ReadSecret(e.stdin, e.stderr, "OpenAI API key: ")
		if err != nil {
			return err
		}
		if err := e.keys.SetAPIKey(key); err != nil {
			return err
		}
		k, err := e.keys.APIKey()
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Stored %s in the system keychain.\n", k.Redacted())
		reload(ctx, e)
		return nil
	case "status":
		fs := flags(e, "key status", "")
		if err := parse(fs, args); err != nil {
			return err
		}
		k, err := e.keys.APIKey()
		if errors.Is(err, keystore.ErrNotFound) {
			fmt.Fprintln(e.stdout, "No OpenAI API key is stored. Add one with `keycap key set` (it reads the key from stdin).")
			printAdminKeyStatus(e)
			return nil
		}
		if err != nil {
			return err
		}
		when := "at an unknown date"
		if !k.StoredAt.IsZero() {
			when = "on " + k.StoredAt.Local().Format(time.DateTime)
		}
		fmt.Fprintf(e.stdout, "API key %s, stored in the system keychain %s.\n", k.Redacted(), when)
		printAdminKeyStatus(e)
		return nil
	case "rm":
		fs := flags(e, "key rm", "[--admin]")
		admin := fs.Bool("admin", false, "remove the admin key instead (reconciliation with OpenAI's figures turns off)")
		if err := parse(fs, args); err != nil {
			return err
		}
		if *admin {
			if err := e.keys.DeleteAdminKey(); err != nil {
				if errors.Is(err, keystore.ErrNotFound) {
					fmt.Fprintln(e.stdout, "No OpenAI admin key was stored.")
					return nil
				}
				return err
			}
			fmt.Fprintln(e.stdout, "Removed the OpenAI admin key from the system keychain; keycap no longer compares its figures with OpenAI's.")
			return nil
		}
		if err := e.keys.DeleteAPIKey(); err != nil {
			if errors.Is(err, keystore.ErrNotFound) {
				fmt.Fprintln(e.stdout, "No OpenAI API key was stored.")
				return nil
			}
			return err
		}
		fmt.Fprintln(e.stdout, "Removed the OpenAI API key from the system keychain.")
		reload(ctx, e)
		return nil
	case "import-env":
		fs := flags(e, "key import-env", "[FILE] [--backup]")
		backup := fs.Bool("backup", false, "keep the original file as FILE.bak (it still holds the key)")
		if err := parse(fs, args); err != nil {
			return err
		}
		if err := tooMany(e, fs, 1); err != nil {
			return err
		}
		path := ".env"
		if fs.NArg() == 1 {
			path = fs.Arg(0)
		}
		red, err := dotenv.ImportFile(path, e.keys, *backup)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Moved %s from %s into the system keychain; %s no longer holds it.\n", red, path, path)
		if *backup {
			fmt.Fprintf(e.stdout, "%s.bak still holds the key: delete it once you no longer need it.\n", path)
		}
		fmt.Fprintln(e.stdout, "Run your script with `keycap exec -- python app.py` so it gets a short-lived token instead.")
		reload(ctx, e)
		return nil
	}
	fmt.Fprintf(e.stderr, "keycap key: unknown subcommand %q (set, status, rm, import-env)\n", sub)
	return errUsage
}

// reload tells a running engine to read the key again.
func reload(ctx context.Context, e *env) {
	if _, err := e.client().ReloadKey(ctx); err != nil && !errors.Is(err, control.ErrNotRunning) {
		fmt.Fprintln(e.stderr, sentence(err))
	}
}

// setAdminKey stores an admin key read from stdin and, when the engine
// runs, compares with OpenAI's figures at once.
func setAdminKey(ctx context.Context, e *env) error {
	key, err := keystore.ReadSecret(e.stdin, e.stderr, "OpenAI admin key: ")
	if err != nil {
		return err
	}
	if err := e.keys.SetAdminKey(key); err != nil {
		return err
	}
	k, err := e.keys.AdminKey()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Stored admin key %s in the system keychain; keycap compares its figures with OpenAI's usage every few minutes.\n", k.Redacted())
	s, err := e.client().SyncOpenAI(ctx)
	switch {
	case errors.Is(err, control.ErrNotRunning):
	case err != nil:
		fmt.Fprintln(e.stderr, sentence(err))
	default:
		loc, lerr := time.LoadLocation(s.Timezone)
		if lerr != nil {
			loc = time.Local
		}
		for _, line := range s.Summary(loc) {
			fmt.Fprintln(e.stdout, line)
		}
	}
	return nil
}

// printAdminKeyStatus says whether an admin key is stored.
func printAdminKeyStatus(e *env) {
	k, err := e.keys.AdminKey()
	switch {
	case errors.Is(err, keystore.ErrNotFound):
		fmt.Fprintln(e.stdout, "No admin key: keycap does not compare its figures with OpenAI's. Add one with `keycap key set --admin`.")
	case err != nil:
		fmt.Fprintln(e.stdout, sentence(err))
	default:
		when := "at an unknown date"
		if !k.StoredAt.IsZero() {
			when = "on " + k.StoredAt.Local().Format(time.DateTime)
		}
		fmt.Fprintf(e.stdout, "Admin key %s, stored in the system keychain %s.\n", k.Redacted(), when)
	}
}
