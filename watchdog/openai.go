package watchdog

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/keycap/keycap/watchdog/config"
	"github.com/keycap/keycap/watchdog/notify"
	"github.com/keycap/keycap/watchdog/reconcile"
)

// startReconcile prepares the comparison with OpenAI's organization usage;
// Run starts its polling. Without an admin key every sync says so, and
// Status shows reconciliation as off in one line.
func (w *Watchdog) startReconcile(cfg config.Config, adminKey func() (string, error)) {
	loc, _ := cfg.Location()
	tr := w.transport
	if tr == nil {
		tr = defaultTransport()
	}
	w.mu.RLock()
	prices := w.meter.Prices
	w.mu.RUnlock()
	w.reconciler = reconcile.New(reconcile.Options{
		Client: &reconcile.Client{BaseURL: cfg.Upstream, Key: adminKey, HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second},
			Now: w.now, Logger: w.log},
		Prices: prices, Ledger: w.ledger, Location: loc, Config: cfg.Reconcile, Now: w.now, Logger: w.log,
		OnUntracked: w.untracked, OnSync: w.reconciled,
	})
}

// configureReconcile applies a new configuration to the comparison.
func (w *Watchdog) configureReconcile(cfg config.Config) {
	loc, _ := cfg.Location()
	w.mu.RLock()
	prices := w.meter.Prices
	w.mu.RUnlock()
	w.reconciler.Configure(cfg.Reconcile, loc, prices)
	w.reconciler.SetBaseURL(cfg.Upstream)
}

// untracked records spend OpenAI reports beyond keycap's as an event and
// tells the desktop.
func (w *Watchdog) untracked(f reconcile.Finding) {
	w.event(reconcile.EventKind, "", f.Untracked, f.Message)
	n := notify.Notification{Kind: reconcile.EventKind, Title: fmt.Sprintf("%s spent outside keycap", f.Untracked), Message: f.Message}
	if err := w.notifier.Notify(n); err != nil {
		w.log.Debug("notify", "err", err)
	}
}

// reconciled takes in a new comparison: with count_untracked_against_cap,
// untracked spend counts against today's cap, so that machines sharing a
// key share one budget through OpenAI's figures.
func (w *Watchdog) reconciled(s reconcile.Snapshot) {
	var outside = s.Untracked
	if !w.Config().Reconcile.CountUntrackedAgainstCap || s.Off != "" {
		outside = 0
	}
	w.budget.SetExternal(w.now(), s.Day, outside)
	w.changed()
}

// SyncOpenAI reads OpenAI's usage and costs now (`keycap sync`).
func (w *Watchdog) SyncOpenAI(ctx context.Context) (reconcile.Snapshot, error) {
	return w.reconciler.Sync(ctx)
}

// OpenAI returns the latest comparison with OpenAI's figures.
func (w *Watchdog) OpenAI() reconcile.Snapshot { return w.reconciler.Snapshot() }
