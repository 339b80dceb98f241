package reconcile_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/meter"
	"github.com/keycap/keycap/watchdog/money"
	"github.com/keycap/keycap/watchdog/pricing"
	"github.com/keycap/keycap/watchdog/problem"
	"github.com/keycap/keycap/watchdog/reconcile"
	"github.com/keycap/keycap/watchdog/standin"
)

const adminKey = "sk-admin-" + "TESTADMINKEYabcdefghijklmnopqrstuvwxyz0123456789"

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a fake organization API, a ledger and a reconciler reading
// them, with its waits and findings recorded.
type fixture struct {
	org      *standin.Organization
	clock    *clock
	db       *ledger.DB
	client   *reconcile.Client
	r        *reconcile.Reconciler
	loc      *time.Location
	mu       sync.Mutex
	sleeps   []time.Duration
	findings []reconcile.Finding
	syncs    int
}

func (f *fixture) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

func (f *fixture) Findings() []reconcile.Finding {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]reconcile.Finding(nil), f.findings...)
}

var prices = func() *pricing.Table {
	t, err := pricing.Load(nil, nil)
	if err != nil {
		panic(err)
	}
	return t
}()

// mustStart starts the fixture at now (a time in loc) with the default
// configuration.
func mustStart(tb testing.TB, now time.Time, key string) *fixture {
	tb.Helper()
	f := &fixture{clock: &clock{t: now}, loc: now.Location()}
	f.org = standin.NewOrganization(nil, standin.OrgOptions{AdminKey: adminKey, Now: f.clock.Now})
	ts := httptest.NewServer(f.org)
	tb.Cleanup(ts.Close)
	db, err := ledger.Open(filepath.Join(tb.TempDir(), "ledger.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	f.db = db
	f.client = &reconcile.Client{
		BaseURL: ts.URL + "/v1",
		Key:     func() (string, error) { return key, nil },
		Sleep: func(ctx context.Context, d time.Duration) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.sleeps = append(f.sleeps, d)
			return nil
		},
		Now: f.clock.Now,
	}
	f.r = f.newReconciler(reconcile.DefaultConfig())
	return f
}

func (f *fixture) newReconciler(cfg reconcile.Config) *reconcile.Reconciler {
	return reconcile.New(reconcile.Options{
		Client: f.client, Prices: prices, Ledger: f.db, Location: f.loc, Config: cfg, Now: f.clock.Now,
		OnUntracked: func(x reconcile.Finding) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.findings = append(f.findings, x)
		},
		OnSync: func(reconcile.Snapshot) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.syncs++
		},
	})
}

// meter records a settled request in the ledger, as keycap's proxy does.
func (f *fixture) meter(tb testing.TB, at time.Time, model string, cost money.USD) {
	tb.Helper()
	ctx := context.Background()
	id, err := f.db.Reserve(ctx, ledger.Entry{Start: at, Day: at.In(f.loc).Format(time.DateOnly), TokenID: "tok", Label: "script.py",
		Method: "POST", Path: "/chat/completions", Endpoint: "chat.completions", Model: model, Estimate: cost})
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.db.Settle(ctx, id, at.Add(time.Second), meter.Settlement{Cost: cost, Exact: true}, 200, "req"); err != nil {
		tb.Fatal(err)
	}
}

// mini is gpt-4o-mini usage costing exactly $0.00045 a request.
func mini(at time.Time, key string, n int) standin.OrgUsage {
	return standin.OrgUsage{At: at, Endpoint: "completions", Model: "gpt-4o-mini-2024-07-18", APIKeyID: key, ProjectID: "proj_main",
		Units: standin.Units{InputTokens: 1000 * n, OutputTokens: 500 * n}, Requests: n, USD: 0.00045 * float64(n)}
}

// dalle is n standard 1024x1024 DALL-E 3 images, $0.04 each.
func dalle(at time.Time, key string, n int) standin.OrgUsage {
	return standin.OrgUsage{At: at, Endpoint: "images", Model: "dall-e-3", APIKeyID: key, ProjectID: "proj_notebook",
		Units: standin.Units{Images: n, Size: "1024x1024", Quality: "standard"}, Requests: n, Source: "image.generation", USD: 0.04 * float64(n)}
}

// dalleCost is what n such images come to with keycap's table (LiteLLM
// prices DALL-E 3 by the pixel, so 25 images are a hair under $1).
func dalleCost(n int) money.USD {
	c, _ := reconcile.Price(prices, reconcile.Images, reconcile.Result{Model: "dall-e-3", Size: "1024x1024", Images: int64(n), Requests: int64(n)})
	return c
}

func mustLoad(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

func TestPrice(t *testing.T) {
	tests := []struct {
		name string
		kind reconcile.Kind
		r    reconcile.Result
		want money.USD
		ok   bool
	}{
		{"chat", reconcile.Completions, reconcile.Result{Model: "gpt-4o-mini-2024-07-18", InputTokens: 1000, OutputTokens: 500, Requests: 1}, 450, true},
		{"cached input at the cache price", reconcile.Completions, reconcile.Result{Model: "gpt-4o-mini", InputTokens: 1000, InputCachedTokens: 1000, Requests: 1}, 75, true},
		{"batch at half price", reconcile.Completions, reconcile.Result{Model: "gpt-4o-mini", InputTokens: 1000, OutputTokens: 500, Requests: 1, Batch: true}, 225, true},
		{"priority tier", reconcile.Completions, reconcile.Result{Model: "gpt-4o-mini", InputTokens: 1000, Requests: 1, ServiceTier: "priority"}, 250, true},
		{"embeddings", reconcile.Embeddings, reconcile.Result{Model: "text-embedding-3-small", InputTokens: 1_000_000, Requests: 3}, 20_000, true},
		{"tts by the character", reconcile.AudioSpeeches, reconcile.Result{Model: "tts-1", Characters: 1000, Requests: 1}, 15_000, true},
		{"whisper by the second", reconcile.AudioTranscriptions, reconcile.Result{Model: "whisper-1", Seconds: 60, Requests: 1}, 6_000, true},
		{"dall-e-3 at the cheapest quality", reconcile.Images, reconcile.Result{Model: "dall-e-3", Size: "1024x1024", Images: 2, Requests: 2}, 80_000, true},
		{"dall-e-2", reconcile.Images, reconcile.Result{Model: "dall-e-2", Size: "256x256", Images: 1, Requests: 1}, 16_000, true},
		{"unknown model", reconcile.Completions, reconcile.Result{Model: "no-such-model", InputTokens: 10, Requests: 1}, 0, false},
		{"tts model billed by tokens", reconcile.AudioSpeeches, reconcile.Result{Model: "gpt-4o-mini-tts", Characters: 100, Requests: 1}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := reconcile.Price(prices, tt.kind, tt.r)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if got != tt.want {
				t.Fatalf("price = %d µ$ (%s), want %d µ$", got, got, tt.want)
			}
		})
	}
}

func TestClientFollowsPages(t *testing.T) {
	now := time.Date(2025, 4, 23, 12, 0, 0, 0, time.UTC)
	f := mustStart(t, now, adminKey)
	start := now.Add(-50 * time.Hour) // 3000 one-minute buckets: three pages of at most 1440
	f.org.AddUsage(mini(start.Add(time.Minute), "key_a", 1), mini(start.Add(26*time.Hour), "key_a", 2), mini(now.Add(-time.Minute), "key_b", 3))
	bs, err := f.client.Usage(context.Background(), reconcile.Completions,
		reconcile.Query{Start: start, End: now, Width: "1m", GroupBy: reconcile.GroupBy(reconcile.Completions)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(bs), 3000; got != want {
		t.Fatalf("buckets = %d, want %d", got, want)
	}
	var requests int64
	for i, b := range bs {
		if got, want := b.Start, start.Add(time.Duration(i)*time.Minute); !got.Equal(want) {
			t.Fatalf("bucket %d starts %v, want %v", i, got, want)
		}
		for _, r := range b.Results {
			requests += r.Requests
			if r.Object != "organization.usage.completions.result" || r.Model == "" || r.APIKeyID == "" || r.ProjectID == "" {
				t.Fatalf("result = %+v, want a grouped completions result", r)
			}
		}
	}
	if got, want := requests, int64(6); got != want {
		t.Fatalf("requests = %d, want %d", got, want)
	}
	reqs := f.org.Requests()
	if got, want := len(reqs), 3; got != want {
		t.Fatalf("pages read = %d, want %d", got, want)
	}
	for i, r := range reqs {
		if got, want := r.Query["group_by[]"], []string{"project_id", "api_key_id", "model", "batch", "service_tier"}; strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("request %d group_by[] = %v, want %v", i, got, want)
		}
		if got, want := r.Query.Get("page") != "", i > 0; got != want {
			t.Fatalf("request %d has page cursor = %v, want %v", i, got, want)
		}
		if got, want := r.Query.Get("bucket_width"), "1m"; got != want {
			t.Fatalf("bucket_width = %q, want %q", got, want)
		}
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	now := time.Date(2025, 4, 23, 12, 0, 0, 0, time.UTC)
	t.Run("succeeds after waiting", func(t *testing.T) {
		f := mustStart(t, now, adminKey)
		f.org.RateLimit(2, 7*time.Second)
		if _, err := f.client.Costs(context.Background(), reconcile.Query{Start: now.Add(-48 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if got, want := f.Sleeps(), []time.Duration{7 * time.Second, 7 * time.Second}; !equalDurations(got, want) {
			t.Fatalf("waits = %v, want %v", got, want)
		}
		if got, want := len(f.org.Requests()), 3; got != want {
			t.Fatalf("requests = %d, want %d", got, want)
		}
	})
	t.Run("backs off without Retry-After", func(t *testing.T) {
		f := mustStart(t, now, adminKey)
		f.org.RateLimit(3, 0)
		if _, err := f.client.Costs(context.Background(), reconcile.Query{Start: now.Add(-48 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if got, want := f.Sleeps(), []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !equalDurations(got, want) {
			t.Fatalf("waits = %v, want %v", got, want)
		}
	})
	t.Run("gives up after the retries", func(t *testing.T) {
		f := mustStart(t, now, adminKey)
		f.client.Retries = 2
		f.org.RateLimit(10, 3*time.Second)
		_, err := f.client.Costs(context.Background(), reconcile.Query{Start: now.Add(-48 * time.Hour)})
		if got, want := problem.CodeOf(err), problem.Upstream; got != want {
			t.Fatalf("code = %q (%v), want %q", got, err, want)
		}
		if !strings.Contains(err.Error(), "rate limiting") {
			t.Fatalf("error = %q, want it to say OpenAI is rate limiting", err)
		}
		if got, want := f.Sleeps(), []time.Duration{3 * time.Second, 3 * time.Second}; !equalDurations(got, want) {
			t.Fatalf("waits = %v, want %v", got, want)
		}
	})
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNonAdminKeyNeedsAdminKey(t *testing.T) {
	now := time.Date(2025, 4, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		key  string
		err  error
		// sent is whether the request reaches OpenAI at all.
		sent bool
		why  string
	}{
		{"project API key", "sk-proj-" + "E2EREALKEYabcdefghijklmnopqrstuvwxyz0123456789k3y9", nil, false, "only admin keys"},
		{"legacy API key", "sk-" + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL", nil, false, "only admin keys"},
		{"no key stored", "", errors.New("not found"), false, "none is stored"},
		{"revoked admin key", "sk-admin-" + "REVOKEDabcdefghijklmnopqrstuvwxyz0123456789", nil, true, "revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustStart(t, now, tt.key)
			f.client.Key = func() (string, error) { return tt.key, tt.err }
			s, err := f.r.Sync(context.Background())
			var pe *problem.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %#v, want a *problem.Error", err)
			}
			msg := problem.MessageOf(err)
			for _, want := range []string{"needs an organization admin key", "keycap key set --admin", tt.why} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not say %q", msg, want)
				}
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, tt.key) && tt.key != "" {
				t.Errorf("message %q is not one sentence without the key", msg)
			}
			if s.Off == "" || s.ReportedToday != 0 {
				t.Errorf("snapshot = %+v, want reconciliation off and no figure", s)
			}
			if got := s.Summary(time.UTC); len(got) != 1 || !strings.HasPrefix(got[0], "Reconciliation with OpenAI is off: it needs an organization admin key") {
				t.Errorf("summary = %q, want one line saying it is off", got)
			}
			if got := len(f.org.Requests()) > 0; got != tt.sent {
				t.Errorf("request sent = %v, want %v", got, tt.sent)
			}
		})
	}
}

// The stand-in answers a normal key as OpenAI does, and keycap turns that
// into the admin-key sentence too.
func TestOrganizationRefusesAPIKeyAsOpenAIDoes(t *testing.T) {
	org := standin.NewOrganization(nil, standin.OrgOptions{})
	ts := httptest.NewServer(org)
	defer ts.Close()
	req, _ := http.NewRequest("GET", ts.URL+"/v1/organization/costs?start_time=1730419200", nil)
	req.Header.Set("Authorization", "Bearer sk-proj-"+"abcdefghijklmnopqrstuvwxyz0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusUnauthorized; got != want {
		t.Fatalf("status = %d, want %d", got, want)
	}
}

func TestUTCAndLocalDay(t *testing.T) {
	tests := []struct {
		zone string
		// costDays are the UTC days whose costs cover part of the local day.
		costDays []string
		// firstFrom is when, local time, the first UTC day starts, as the
		// summary says it.
		firstFrom string
	}{
		{"Asia/Tokyo", []string{"2025-04-22", "2025-04-23"}, "yesterday 09:00"},
		{"America/Los_Angeles", []string{"2025-04-23"}, "yesterday 17:00"},
		{"UTC", []string{"2025-04-23"}, "00:00"},
	}
	for _, tt := range tests {
		t.Run(tt.zone, func(t *testing.T) {
			loc := mustLoad(t, tt.zone)
			now := time.Date(2025, 4, 23, 10, 0, 0, 0, loc)
			f := mustStart(t, now, adminKey)
			midnight := time.Date(2025, 4, 23, 0, 0, 0, 0, loc)
			f.org.AddUsage(
				dalle(midnight.Add(-30*time.Minute), "key_other", 5), // yesterday, local
				dalle(midnight.Add(30*time.Minute), "key_other", 2),  // today, local
				dalle(now.Add(-time.Hour), "key_other", 1),           // today, local
			)
			s, err := f.r.Sync(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := s.ReportedToday, dalleCost(2)+dalleCost(1); got != want {
				t.Fatalf("reported today = %s, want %s (only the local day's images)", got, want)
			}
			if !s.ReportedFrom.Equal(midnight) {
				t.Fatalf("reported from %v, want local midnight %v", s.ReportedFrom, midnight)
			}
			var days []string
			var costs money.USD
			for _, d := range s.CostsDays {
				days = append(days, d.Day)
				costs += d.Amount
			}
			if strings.Join(days, ",") != strings.Join(tt.costDays, ",") {
				t.Fatalf("costs days = %v, want %v", days, tt.costDays)
			}
			// The UTC days hold whatever of yesterday's images fall in them.
			var want money.USD
			for _, u := range []struct {
				at time.Time
				n  money.USD
			}{{midnight.Add(-30 * time.Minute), 5}, {midnight.Add(30 * time.Minute), 2}, {now.Add(-time.Hour), 1}} {
				for _, d := range s.CostsDays {
					if !u.at.Before(d.From) && u.at.Before(d.From.Add(24*time.Hour)) {
						want += u.n * 4 * money.Cent
					}
				}
			}
			if costs != want {
				t.Fatalf("costs of the UTC days = %s, want %s", costs, want)
			}
			if got, want := s.ReportedMonth, 8*4*money.Cent; got != want {
				t.Fatalf("month = %s, want %s", got, want)
			}
			lines := strings.Join(s.Summary(loc), "\n")
			for _, want := range []string{"OpenAI reports $0.12 today (as of 10:00", "for the UTC day " + tt.costDays[0] + " (" + tt.firstFrom + " to "} {
				if !strings.Contains(lines, want) {
					t.Fatalf("summary does not say %q:\n%s", want, lines)
				}
			}
		})
	}
}

func TestAPIThatLags(t *testing.T) {
	loc := mustLoad(t, "Europe/Berlin")
	now := time.Date(2025, 4, 23, 14, 0, 0, 0, loc)
	f := mustStart(t, now, adminKey)
	f.org.SetLag(40 * time.Minute)
	// keycap metered 10 chat requests half an hour ago; OpenAI saw them too.
	for i := range 10 {
		f.meter(t, now.Add(-30*time.Minute+time.Duration(i)*time.Second), "gpt-4o-mini", 450)
	}
	f.org.AddUsage(mini(now.Add(-30*time.Minute), "key_keycap", 10))
	// And a notebook made 25 images with the same key, 20 minutes ago.
	f.org.AddUsage(dalle(now.Add(-20*time.Minute), "key_keycap", 25))

	steps := []struct {
		after     time.Duration
		add       []standin.OrgUsage
		lag       time.Duration
		reported  money.USD
		untracked money.USD
		findings  int
	}{
		// Nothing has arrived yet: keycap's own figure is no alarm.
		{after: 0, lag: 40 * time.Minute, reported: 0, untracked: 0},
		// The chat requests arrive: they match keycap's.
		{after: 10 * time.Minute, lag: 40 * time.Minute, reported: 4500, untracked: 0},
		// The images arrive, long enough after they were made to compare.
		{after: 20 * time.Minute, lag: 40 * time.Minute, reported: 4500 + dalleCost(25), untracked: dalleCost(25), findings: 1},
		// Five more images, shown at once but younger than the delay allowance.
		{after: 20 * time.Minute, add: []standin.OrgUsage{dalle(now.Add(15*time.Minute), "key_keycap", 5)},
			reported: 4500 + dalleCost(25) + dalleCost(5), untracked: dalleCost(25), findings: 1},
		// Compared fifteen minutes later: past twice the threshold, raised again.
		{after: 35 * time.Minute, reported: 4500 + dalleCost(25) + dalleCost(5), untracked: dalleCost(25) + dalleCost(5), findings: 2},
	}
	var last time.Duration
	for _, st := range steps {
		f.clock.Add(st.after - last)
		last = st.after
		f.org.SetLag(st.lag)
		f.org.AddUsage(st.add...)
		s, err := f.r.Sync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if s.ReportedToday != st.reported || s.Untracked != st.untracked {
			t.Fatalf("at +%s: reported %d µ$, untracked %d µ$; want %d, %d", st.after, s.ReportedToday, s.Untracked, st.reported, st.untracked)
		}
		if got, want := s.LocalToday, money.USD(4500); got != want {
			t.Fatalf("local today = %s, want %s", got, want)
		}
		if got, want := len(f.Findings()), st.findings; got != want {
			t.Fatalf("at +%s: findings = %d, want %d", st.after, got, want)
		}
	}
	// The images were made with keycap's own key, elsewhere: that is what
	// the key used beyond keycap's figure.
	s := f.r.Snapshot()
	if got, want := s.Sources, []reconcile.Source{{APIKeyID: "key_keycap", ProjectID: "proj_notebook", Model: "dall-e-3",
		Amount: dalleCost(25) + dalleCost(5), Reported: dalleCost(25) + dalleCost(5), Requests: 30}}; len(got) != 1 || got[0] != want[0] {
		t.Fatalf("sources = %+v, want %+v", got, want)
	}
}

func TestUntrackedSpendNotifiedOnce(t *testing.T) {
	loc := mustLoad(t, "Europe/Berlin")
	now := time.Date(2025, 4, 23, 14, 0, 0, 0, loc)
	f := mustStart(t, now, adminKey)
	for i := range 4 {
		f.meter(t, now.Add(-time.Hour+time.Duration(i)*time.Minute), "gpt-4o-mini", 450)
	}
	f.org.AddUsage(mini(now.Add(-time.Hour), "key_keycap", 4))
	f.org.AddUsage(dalle(now.Add(-50*time.Minute), "key_notebook", 15)) // $0.60: over the $0.50 threshold

	for range 3 {
		if _, err := f.r.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	fs := f.Findings()
	if got, want := len(fs), 1; got != want {
		t.Fatalf("findings = %d, want %d", got, want)
	}
	x := fs[0]
	if got, want := x.Untracked, dalleCost(15); got != want {
		t.Fatalf("untracked = %d µ$, want %d", got, want)
	}
	if len(x.Sources) == 0 {
		t.Fatal("finding says nothing of where the spend came from")
	}
	if got, want := f.r.Snapshot().KeycapKeyID, "key_keycap"; got != want {
		t.Fatalf("keycap's key = %q, want %q", got, want)
	}
	if got, want := x.Sources[0], (reconcile.Source{APIKeyID: "key_notebook", ProjectID: "proj_notebook", Model: "dall-e-3",
		Amount: dalleCost(15), Reported: dalleCost(15), Requests: 15}); got != want {
		t.Fatalf("source = %+v, want %+v", got, want)
	}
	for _, want := range []string{"$0.60", "dall-e-3 on key key_notebook in project proj_notebook", "13:45"} {
		if !strings.Contains(x.Message, want) {
			t.Fatalf("message %q does not say %q", x.Message, want)
		}
	}

	// A restart does not raise it again: the ledger remembers.
	f.r = f.newReconciler(reconcile.DefaultConfig())
	if _, err := f.r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := len(f.Findings()), 1; got != want {
		t.Fatalf("findings after restart = %d, want %d", got, want)
	}

	// It is raised again when it has doubled.
	f.org.AddUsage(dalle(now.Add(-40*time.Minute), "key_notebook", 15)) // $1.20 in all
	f.r.Sync(context.Background())
	f.r.Sync(context.Background())
	if got, want := len(f.Findings()), 2; got != want {
		t.Fatalf("findings after doubling = %d, want %d", got, want)
	}

	// And once again on another day.
	f.clock.Add(24 * time.Hour)
	f.org.AddUsage(dalle(f.clock.Now().Add(-time.Hour), "key_notebook", 20))
	f.r.Sync(context.Background())
	if got, want := len(f.Findings()), 3; got != want {
		t.Fatalf("findings the next day = %d, want %d", got, want)
	}
}

func TestRehearsalsAreNotMetered(t *testing.T) {
	now := time.Date(2025, 4, 23, 14, 0, 0, 0, time.UTC)
	f := mustStart(t, now, adminKey)
	ctx := context.Background()
	id, err := f.db.Reserve(ctx, ledger.Entry{Start: now.Add(-time.Hour), Day: "2025-04-23", Label: "x", Endpoint: "images.generations",
		Model: "dall-e-3", Estimate: money.Dollar, Rehearsed: true})
	if err != nil {
		t.Fatal(err)
	}
	f.db.Settle(ctx, id, now.Add(-time.Hour), meter.Settlement{Cost: money.Dollar}, 200, "")
	s, err := f.r.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.LocalToday != 0 || s.Untracked != 0 {
		t.Fatalf("local %s, untracked %s: rehearsals cost nothing and reach no API", s.LocalToday, s.Untracked)
	}
}

func TestSyncErrorKeepsLastFigures(t *testing.T) {
	now := time.Date(2025, 4, 23, 14, 0, 0, 0, time.UTC)
	f := mustStart(t, now, adminKey)
	f.client.Retries = -1
	f.org.AddUsage(dalle(now.Add(-time.Hour), "key_x", 1))
	if _, err := f.r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(5 * time.Minute)
	f.org.RateLimit(1, time.Second)
	s, err := f.r.Sync(context.Background())
	if err == nil {
		t.Fatal("sync succeeded through a 429 with no retries")
	}
	if got, want := s.ReportedToday, dalleCost(1); got != want {
		t.Fatalf("reported = %s, want the last good %s", got, want)
	}
	if s.LastError == "" || !s.LastErrorAt.Equal(f.clock.Now()) || !s.LastSuccess.Equal(now) {
		t.Fatalf("snapshot = %+v, want the error now and the last success before", s)
	}
	lines := s.Summary(time.UTC)
	if last := lines[len(lines)-1]; !strings.Contains(last, "Last sync 14:00; last error at 14:05: OpenAI's usage API is rate limiting") {
		t.Fatalf("last line = %q", last)
	}
}

func TestRunSyncsAtOnceAndWhenKicked(t *testing.T) {
	now := time.Date(2025, 4, 23, 14, 0, 0, 0, time.UTC)
	f := mustStart(t, now, adminKey)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.r.Run(ctx) }()
	waitFor := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			f.mu.Lock()
			got := f.syncs
			f.mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("syncs = %d, want %d", got, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(1) // at once, though the interval is five minutes
	f.r.Kick()
	waitFor(2)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if f.r.Snapshot().LastSuccess.IsZero() {
		t.Fatal("no successful sync recorded")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  reconcile.Config
		ok   bool
	}{
		{"defaults", reconcile.DefaultConfig(), true},
		{"zero value", reconcile.Config{}, true},
		{"interval too short", reconcile.Config{Interval: time.Second}, false},
		{"negative delay", reconcile.Config{Delay: -time.Minute}, false},
		{"bad width", reconcile.Config{BucketWidth: "1d"}, false},
		{"negative threshold", reconcile.Config{UntrackedThresholdUSD: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.Validate() == nil; got != tt.ok {
				t.Fatalf("valid = %v, want %v (%v)", got, tt.ok, tt.cfg.Validate())
			}
		})
	}
}
