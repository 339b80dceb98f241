package watchdog

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/keycap/keycap/watchdog/control"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/problem"
)

// listenControl opens the control socket, readable and writable by the user
// only, in a directory (the data directory) that is the user's only. On
// Windows, which has AF_UNIX sockets since Windows 10 1803, the socket sits
// in the user's profile, whose ACL keeps other users out.
func listenControl(path string) (net.Listener, error) {
	// We hold the data directory's lock, so a socket left here is stale.
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("open control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("protect control socket %s: %w", path, err)
	}
	return &peerListener{Listener: ln}, nil
}

// peerListener drops connections from other users, where the OS tells who
// is on the other end.
type peerListener struct{ net.Listener }

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if samePeer(c) {
			return c, nil
		}
		c.Close()
	}
}

func (w *Watchdog) controlHandler() http.Handler {
	mux := http.NewServeMux()
	reply := func(rw http.ResponseWriter, v any, err error) {
		if err != nil {
			if problem.CodeOf(err) == problem.Internal {
				w.log.Error("control request failed", "err", err)
			}
			var pe *problem.Error
			if !errors.As(err, &pe) {
				err = problem.Errorf(problem.Invalid, "%s", err.Error())
			}
			problem.Write(rw, err)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		json.NewEncoder(rw).Encode(v)
	}
	read := func(r *http.Request, v any) error {
		if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20)).Decode(v); err != nil {
			return problem.Errorf(problem.Invalid, "the request to keycap is not valid JSON")
		}
		return nil
	}
	limit := func(r *http.Request) int {
		n, err := strconv.Atoi(r.URL.Query().Get("limit"))
		if err != nil || n <= 0 || n > 10_000 {
			return 50
		}
		return n
	}
	mux.HandleFunc("GET /status", func(rw http.ResponseWriter, r *http.Request) { reply(rw, w.Status(), nil) })
	mux.HandleFunc("POST /tokens", func(rw http.ResponseWriter, r *http.Request) {
		var req control.TokenRequest
		if err := read(r, &req); err != nil {
			reply(rw, nil, err)
			return
		}
		if req.Budget < 0 {
			reply(rw, nil, problem.Errorf(problem.Invalid, "a token budget cannot be negative"))
			return
		}
		secret, info, err := w.NewToken(r.Context(), TokenOptions{Label: req.Label, TTL: req.TTL, Budget: req.Budget, Rehearse: req.Rehearse})
		reply(rw, control.TokenResponse{Token: secret, Info: info, ProxyURL: w.ProxyURL()}, err)
	})
	mux.HandleFunc("GET /tokens", func(rw http.ResponseWriter, r *http.Request) { reply(rw, w.tokens.list(w.now()), nil) })
	mux.HandleFunc("PUT /cap", func(rw http.ResponseWriter, r *http.Request) {
		var req control.CapRequest
		if err := read(r, &req); err != nil {
			reply(rw, nil, err)
			return
		}
		if req.Cap < 0 || req.Cap > 1_000_000*money.Dollar {
			reply(rw, nil, problem.Errorf(problem.Invalid, "the cap must be between $0 and $1000000"))
			return
		}
		err := w.SetCap(req.Cap)
		reply(rw, w.Status(), err)
	})
	mux.HandleFunc("POST /pause", func(rw http.ResponseWriter, r *http.Request) {
		var req control.PauseRequest
		read(r, &req)
		err := w.Pause(req.Reason)
		reply(rw, w.Status(), err)
	})
	mux.HandleFunc("POST /resume", func(rw http.ResponseWriter, r *http.Request) {
		err := w.Resume()
		reply(rw, w.Status(), err)
	})
	mux.HandleFunc("POST /revoke", func(rw http.ResponseWriter, r *http.Request) {
		var req control.RevokeRequest
		if err := read(r, &req); err != nil {
			reply(rw, nil, err)
			return
		}
		if !req.All && req.ID == "" {
			reply(rw, nil, problem.Errorf(problem.Invalid, "say which token to revoke (its id) or all"))
			return
		}
		var ids []string
		if !req.All {
			ids = []string{req.ID}
		}
		n, err := w.Revoke(r.Context(), ids...)
		if err == nil && n == 0 && !req.All {
			err = problem.Errorf(problem.NotFound, "no live token has id %q (see `keycap status`)", req.ID)
		}
		reply(rw, control.RevokeResponse{Revoked: n}, err)
	})
	mux.HandleFunc("GET /log", func(rw http.ResponseWriter, r *http.Request) {
		if id := r.URL.Query().Get("token"); id != "" {
			es, err := w.ledger.TokenEntries(r.Context(), id)
			reply(rw, es, err)
			return
		}
		es, err := w.ledger.Recent(r.Context(), limit(r))
		reply(rw, es, err)
	})
	mux.HandleFunc("POST /allow", func(rw http.ResponseWriter, r *http.Request) {
		var req control.AllowRequest
		if err := read(r, &req); err != nil {
			reply(rw, nil, err)
			return
		}
		if !req.All && req.Who == "" {
			reply(rw, nil, problem.Errorf(problem.Invalid, "say which block to lift (its id, the script or the token) or all"))
			return
		}
		who := req.Who
		if req.All {
			who = ""
		}
		n := w.Allow(who)
		if n == 0 && !req.All {
			reply(rw, nil, problem.Errorf(problem.NotFound, "no loop block matches %q (see `keycap status`)", req.Who))
			return
		}
		reply(rw, control.AllowResponse{Lifted: n}, nil)
	})
	mux.HandleFunc("PUT /rehearsal", func(rw http.ResponseWriter, r *http.Request) {
		var req control.RehearsalRequest
		if err := read(r, &req); err != nil {
			reply(rw, nil, err)
			return
		}
		err := w.SetRehearsing(req.On)
		reply(rw, w.Status(), err)
	})
	mux.HandleFunc("GET /events", func(rw http.ResponseWriter, r *http.Request) {
		es, err := w.ledger.Events(r.Context(), limit(r))
		reply(rw, es, err)
	})
	mux.HandleFunc("POST "+control.SyncPath, func(rw http.ResponseWriter, r *http.Request) {
		s, err := w.SyncOpenAI(r.Context())
		reply(rw, s, err)
	})
	mux.HandleFunc("GET /reconcile", func(rw http.ResponseWriter, r *http.Request) { reply(rw, w.OpenAI(), nil) })
	mux.HandleFunc("POST /reload-key", func(rw http.ResponseWriter, r *http.Request) {
		w.ReloadKey()
		reply(rw, w.Status(), nil)
	})
	return mux
}
