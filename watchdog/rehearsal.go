package watchdog

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/keycap/keycap/watchdog/pricing"
	"github.com/keycap/keycap/watchdog/standin"
)

// rehearsalLatency makes the stand-in answer about as fast as the real API
// starts to, so a rehearsed loop runs at a realistic pace.
const rehearsalLatency = 250 * time.Millisecond

// rehearsalServer is the built-in stand-in for the OpenAI API that
// rehearsed requests go to, on its own loopback port with a key only the
// engine knows.
type rehearsalServer struct {
	api *standin.Server
	srv *http.Server
	ln  net.Listener
	url *url.URL
	key string
}

func startRehearsal(log *slog.Logger) (*rehearsalServer, error) {
	var b [24]byte
	rand.Read(b[:])
	key := "sk-rehearsal-" + hex.EncodeToString(b[:])
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start the rehearsal stand-in: %w", err)
	}
	u, _ := url.Parse("http://" + ln.Addr().String() + "/v1")
	// The stand-in bills what the real API would have, by its own reading
	// of the price table; keycap's meter prices rehearsed requests itself.
	api := standin.New(standin.Options{APIKey: key, Latency: rehearsalLatency, Prices: pricing.Raw()})
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	go srv.Serve(ln)
	return &rehearsalServer{api: api, srv: srv, ln: ln, url: u, key: key}, nil
}

func (r *rehearsalServer) close() { r.srv.Close() }
