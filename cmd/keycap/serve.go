package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/keycap/keycap/keystore"
	"github.com/keycap/keycap/watchdog"
)

func runServe(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "serve", "[--listen 127.0.0.1:PORT] [--upstream URL]")
	listen := fs.String("listen", "", "proxy address on loopback (default from config.toml, 127.0.0.1:8744; :0 picks a free port)")
	upstream := fs.String("upstream", "", "API base URL to forward to (default from config.toml, https://api.openai.com/v1)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := tooMany(e, fs, 0); err != nil {
		return err
	}
	w, err := openEngine(e, *listen, *upstream)
	if err != nil {
		return err
	}
	defer w.Close()
	st := w.Status()
	fmt.Fprintf(e.stderr, "keycap is serving %s → %s (cap %s/day, %s spent today)\n", st.ProxyURL, st.Upstream, st.Cap, st.Spent)
	if !st.KeyPresent {
		fmt.Fprintln(e.stderr, "keycap: no OpenAI API key yet; requests are refused until you run `keycap key set`")
	}
	fmt.Fprintln(e.stderr, "Run scripts with `keycap exec -- python app.py`, or `eval \"$(keycap env)\"`. Stop with Ctrl-C.")
	return w.Run(ctx)
}

// openEngine opens the engine with the key from the keychain.
func openEngine(e *env, listen, upstream string) (*watchdog.Watchdog, error) {
	return watchdog.Open(watchdog.Options{
		Home: e.home, Listen: listen, Upstream: upstream, Logger: e.log,
		AdminKey: func() (string, error) {
			k, err := e.keys.AdminKey()
			if err != nil {
				return "", err
			}
			return k.Value, nil
		},
		Key: func() (string, error) {
			k, err := e.keys.APIKey()
			if err != nil {
				if !errors.Is(err, keystore.ErrNotFound) {
					fmt.Fprintln(e.stderr, "keycap:", err)
				}
				return "", err
			}
			return k.Value, nil
		},
	})
}
