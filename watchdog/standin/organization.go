package standin

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Organization is a stand-in for OpenAI's organization Usage and Costs APIs
// (GET /v1/organization/costs and /v1/organization/usage/{completions,
// embeddings, images, audio_speeches, audio_transcriptions}), shaped like the
// official OpenAPI description: pages of time buckets, results grouped by
// group_by, cursor pagination with has_more and next_page, an admin key, and
// 429 answers with Retry-After on demand.
//
// It wraps a Server: every other path goes to the Server, and what the
// Server bills becomes organization usage, stamped with the time it was
// billed, so a request that went through keycap shows up in the org figures
// (after Lag, as on the real API). Tests add usage that never went through
// keycap with AddUsage. Its methods are safe for concurrent use.
type Organization struct {
	api  *Server
	opts OrgOptions

	mu      sync.Mutex
	usage   []OrgUsage
	seen    int // the Server's charges already turned into usage
	lag     time.Duration
	limited int // how many more requests to answer 429
	retry   time.Duration
	reqs    []OrgRequest
}

var _ http.Handler = (*Organization)(nil)

// OrgOptions configure an Organization.
type OrgOptions struct {
	// AdminKey, when set, is the one admin key accepted. Either way a key
	// that is not an admin key (sk-admin-…) is refused with the real API's
	// "insufficient permissions" answer.
	AdminKey string
	// Now is the clock; it defaults to the Server's, or time.Now.
	Now func() time.Time
	// Lag is how long usage takes to show up in the answers.
	Lag time.Duration
	// APIKeyID and ProjectID are what the Server's charges are attributed
	// to; they default to "key_standin" and "proj_standin".
	APIKeyID  string
	ProjectID string
}

// OrgUsage is usage as the organization APIs see it: one or more requests
// at one moment.
type OrgUsage struct {
	At time.Time
	// Endpoint is the usage endpoint it is reported under: "completions",
	// "embeddings", "images", "audio_speeches" or "audio_transcriptions".
	Endpoint  string
	Model     string
	APIKeyID  string
	ProjectID string
	UserID    string
	Units     Units
	// Requests is num_model_requests; 0 counts as 1.
	Requests    int
	Batch       bool
	ServiceTier string // completions; "" reads as "default"
	Source      string // images: "image.generation", "image.edit" or "image.variation"
	// USD is what the usage cost, as the Costs API reports it.
	USD float64
}

// OrgRequest is one request the Organization answered.
type OrgRequest struct {
	Path   string
	Query  url.Values
	Status int
}

// NewOrganization returns an Organization in front of api, which may be nil
// for an Organization that serves only the organization APIs.
func NewOrganization(api *Server, o OrgOptions) *Organization {
	if o.Now == nil {
		o.Now = time.Now
		if api != nil {
			o.Now = api.opts.Now
		}
	}
	if o.APIKeyID == "" {
		o.APIKeyID = "key_standin"
	}
	if o.ProjectID == "" {
		o.ProjectID = "proj_standin"
	}
	return &Organization{api: api, opts: o, lag: o.Lag}
}

// AddUsage records usage made outside the wrapped Server: another machine,
// another tool, a leaked key.
func (o *Organization) AddUsage(u ...OrgUsage) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.usage = append(o.usage, u...)
}

// SetLag changes how long usage takes to show up.
func (o *Organization) SetLag(d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lag = d
}

// RateLimit answers the next n organization requests 429 with a
// Retry-After of retryAfter (whole seconds; 0 sends no Retry-After).
func (o *Organization) RateLimit(n int, retryAfter time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.limited, o.retry = n, retryAfter
}

// Requests returns the organization requests answered so far, oldest first.
func (o *Organization) Requests() []OrgRequest {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]OrgRequest, len(o.reqs))
	for i, r := range o.reqs {
		out[i] = OrgRequest{Path: r.Path, Query: cloneValues(r.Query), Status: r.Status}
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// ServeHTTP answers the organization APIs and passes everything else to
// the wrapped Server.
func (o *Organization) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/v1/organization/") {
		if o.api == nil {
			orgFail(w, http.StatusNotFound, "invalid_request_error", "", "", fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path))
			return
		}
		o.api.ServeHTTP(w, r)
		o.absorb()
		return
	}
	rec := OrgRequest{Path: r.URL.Path, Query: r.URL.Query()}
	status := o.serveOrg(w, r)
	rec.Status = status
	o.mu.Lock()
	o.reqs = append(o.reqs, rec)
	o.mu.Unlock()
}

// absorb turns the Server's new charges into usage stamped now.
func (o *Organization) absorb() {
	if o.api == nil {
		return
	}
	charges := o.api.Charges()
	now := o.opts.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(charges) < o.seen { // the Server was Reset
		o.seen = 0
	}
	for _, c := range charges[o.seen:] {
		ep, source := usageEndpoint(c.Endpoint)
		if ep == "" {
			continue
		}
		o.usage = append(o.usage, OrgUsage{At: now, Endpoint: ep, Model: c.Model, APIKeyID: o.opts.APIKeyID,
			ProjectID: o.opts.ProjectID, Units: c.Units, Requests: 1, Source: source, USD: c.USD})
	}
	o.seen = len(charges)
}

// usageEndpoint maps a Server endpoint to the usage endpoint that reports
// it, and for images the usage "source".
func usageEndpoint(endpoint string) (string, string) {
	switch endpoint {
	case "chat/completions", "responses":
		return "completions", ""
	case "embeddings":
		return "embeddings", ""
	case "audio/speech":
		return "audio_speeches", ""
	case "audio/transcriptions", "audio/translations":
		return "audio_transcriptions", ""
	case "images/generations":
		return "images", "image.generation"
	case "images/edits":
		return "images", "image.edit"
	case "images/variations":
		return "images", "image.variation"
	}
	return "", ""
}

// orgGroups lists the group_by values each endpoint accepts, per the
// OpenAPI description.
var orgGroups = map[string][]string{
	"costs":                {"project_id", "line_item", "api_key_id"},
	"completions":          {"project_id", "user_id", "api_key_id", "model", "batch", "service_tier"},
	"embeddings":           {"project_id", "user_id", "api_key_id", "model"},
	"images":               {"project_id", "user_id", "api_key_id", "model", "size", "source"},
	"audio_speeches":       {"project_id", "user_id", "api_key_id", "model"},
	"audio_transcriptions": {"project_id", "user_id", "api_key_id", "model"},
}

// widths are the bucket widths with their default and largest limit.
var widths = map[string]struct {
	d          time.Duration
	def, limit int
}{
	"1m": {time.Minute, 60, 1440},
	"1h": {time.Hour, 24, 168},
	"1d": {24 * time.Hour, 7, 31},
}

// serveOrg answers one organization request and returns its status.
func (o *Organization) serveOrg(w http.ResponseWriter, r *http.Request) int {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok || key == "":
		return orgFail(w, http.StatusUnauthorized, "invalid_request_error", "", "", "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from https://platform.openai.com/account/api-keys.")
	case !strings.HasPrefix(key, "sk-admin-"):
		return orgFail(w, http.StatusUnauthorized, "invalid_request_error", "", "", "You have insufficient permissions for this operation. Missing scopes: api.usage.read. Check that you have the correct role in your organization (Owner), and if you're using a restricted API key, that it has the necessary scopes.")
	case o.opts.AdminKey != "" && subtle.ConstantTimeCompare([]byte(key), []byte(o.opts.AdminKey)) != 1:
		return orgFail(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "",
			"Incorrect API key provided: "+maskKey(key)+". You can find your API key at https://platform.openai.com/account/api-keys.")
	}
	o.mu.Lock()
	limited, retry := o.limited > 0, o.retry
	if limited {
		o.limited--
	}
	o.mu.Unlock()
	if limited {
		if retry > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
		}
		return orgFail(w, http.StatusTooManyRequests, "requests", "rate_limit_exceeded", "",
			"Rate limit reached for organization usage requests. Please try again later.")
	}
	endpoint := ""
	if r.URL.Path == "/v1/organization/costs" {
		endpoint = "costs"
	} else if ep, ok := strings.CutPrefix(r.URL.Path, "/v1/organization/usage/"); ok && orgGroups[ep] != nil {
		endpoint = ep
	}
	if endpoint == "" || r.Method != http.MethodGet {
		return orgFail(w, http.StatusNotFound, "invalid_request_error", "", "", fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path))
	}
	q, status := o.parseQuery(w, r.URL.Query(), endpoint)
	if status != 0 {
		return status
	}
	o.absorb()
	body, _ := json.Marshal(o.page(q))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(append(body, '\n'))
	return http.StatusOK
}

// orgQuery is a parsed organization request.
type orgQuery struct {
	endpoint   string
	start, end time.Time
	width      time.Duration
	limit      int
	groups     []string
	projects   []string
	keys       []string
	models     []string
}

// list reads an array parameter sent either way clients send them:
// name[]=a&name[]=b (the official SDKs) or name=a&name=b.
func list(v url.Values, name string) []string {
	return append(slices.Clone(v[name+"[]"]), v[name]...)
}

// parseQuery reads the query; on a bad one it answers 400 and returns the
// status.
func (o *Organization) parseQuery(w http.ResponseWriter, v url.Values, endpoint string) (orgQuery, int) {
	q := orgQuery{endpoint: endpoint}
	bad := func(param, format string, args ...any) (orgQuery, int) {
		return q, orgFail(w, http.StatusBadRequest, "invalid_request_error", "", param, fmt.Sprintf(format, args...))
	}
	st := v.Get("start_time")
	if st == "" {
		return bad("start_time", "Missing required parameter: 'start_time'.")
	}
	s, err := strconv.ParseInt(st, 10, 64)
	if err != nil {
		return bad("start_time", "Invalid value for 'start_time': expected an integer (Unix seconds).")
	}
	q.start, q.end = time.Unix(s, 0).UTC(), o.opts.Now().UTC()
	if et := v.Get("end_time"); et != "" {
		e, err := strconv.ParseInt(et, 10, 64)
		if err != nil {
			return bad("end_time", "Invalid value for 'end_time': expected an integer (Unix seconds).")
		}
		q.end = time.Unix(e, 0).UTC()
	}
	bw := v.Get("bucket_width")
	if bw == "" {
		bw = "1d"
	}
	wd, ok := widths[bw]
	if !ok || (endpoint == "costs" && bw != "1d") {
		allowed := "'1m', '1h', '1d'"
		if endpoint == "costs" {
			allowed = "'1d'"
		}
		return bad("bucket_width", "Invalid value for 'bucket_width': '%s'. Supported values are: %s.", bw, allowed)
	}
	q.width, q.limit = wd.d, wd.def
	maxLimit := wd.limit
	if endpoint == "costs" {
		maxLimit = 180
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxLimit {
			return bad("limit", "Invalid value for 'limit': must be between 1 and %d for bucket_width=%s.", maxLimit, bw)
		}
		q.limit = n
	}
	for _, g := range list(v, "group_by") {
		if !slices.Contains(orgGroups[endpoint], g) {
			return bad("group_by", "Invalid value for 'group_by': '%s'. Supported values are: %s.", g, strings.Join(orgGroups[endpoint], ", "))
		}
		if !slices.Contains(q.groups, g) {
			q.groups = append(q.groups, g)
		}
	}
	q.projects, q.keys, q.models = list(v, "project_ids"), list(v, "api_key_ids"), list(v, "models")
	// Buckets are aligned to their width in UTC; the page cursor says
	// where this page's first bucket starts.
	first := q.start.Truncate(q.width)
	if p := v.Get("page"); p != "" {
		t, ok := parseCursor(p)
		if !ok || t.Before(first) {
			return bad("page", "Invalid value for 'page': not a cursor this endpoint returned.")
		}
		first = t
	}
	q.start = first
	return q, 0
}

func cursor(t time.Time) string {
	return "page_" + base64.StdEncoding.EncodeToString([]byte("standin/"+strconv.FormatInt(t.Unix(), 10)))
}

func parseCursor(s string) (time.Time, bool) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "page_"))
	if err != nil {
		return time.Time{}, false
	}
	n, ok := strings.CutPrefix(string(b), "standin/")
	if !ok {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(n, 10, 64)
	return time.Unix(sec, 0).UTC(), err == nil
}

// page builds the answer: up to limit buckets from q.start, each with the
// results visible now.
func (o *Organization) page(q orgQuery) obj {
	o.mu.Lock()
	now := o.opts.Now()
	var visible []OrgUsage
	for _, u := range o.usage {
		if !u.At.Add(o.lag).After(now) && (q.endpoint == "costs" || u.Endpoint == q.endpoint) && q.matches(u) {
			visible = append(visible, u)
		}
	}
	o.mu.Unlock()
	data := []obj{}
	t := q.start
	for ; t.Before(q.end) && len(data) < q.limit; t = t.Add(q.width) {
		end := t.Add(q.width)
		var in []OrgUsage
		for _, u := range visible {
			if !u.At.Before(t) && u.At.Before(end) {
				in = append(in, u)
			}
		}
		data = append(data, obj{"object": "bucket", "start_time": t.Unix(), "end_time": end.Unix(), "results": q.results(in)})
	}
	page := obj{"object": "page", "data": data, "has_more": false, "next_page": nil}
	if t.Before(q.end) {
		page["has_more"], page["next_page"] = true, cursor(t)
	}
	return page
}

func (q orgQuery) matches(u OrgUsage) bool {
	in := func(vs []string, v string) bool { return len(vs) == 0 || slices.Contains(vs, v) }
	return in(q.projects, u.ProjectID) && in(q.keys, u.APIKeyID) && in(q.models, u.Model)
}

// results aggregates usage by the requested groups; fields not grouped by
// are null, as on the real API.
func (q orgQuery) results(us []OrgUsage) []obj {
	type group struct {
		key string
		u   OrgUsage // the grouped fields of the first member
		agg orgTotals
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, u := range us {
		var parts []string
		for _, g := range q.groups {
			parts = append(parts, g+"="+u.field(g))
		}
		k := strings.Join(parts, "\x00")
		g := byKey[k]
		if g == nil {
			g = &group{key: k, u: u}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.agg.add(u)
	}
	slices.SortFunc(groups, func(a, b *group) int { return strings.Compare(a.key, b.key) })
	out := []obj{}
	for _, g := range groups {
		r := q.result(g.agg)
		for _, f := range orgGroups[q.endpoint] {
			if slices.Contains(q.groups, f) {
				if f == "batch" {
					r[f] = g.u.Batch
				} else {
					r[f] = g.u.field(f)
				}
			} else {
				r[f] = nil
			}
		}
		out = append(out, r)
	}
	return out
}

// field returns the value of a group_by field.
func (u OrgUsage) field(name string) string {
	switch name {
	case "project_id":
		return u.ProjectID
	case "user_id":
		return u.UserID
	case "api_key_id":
		return u.APIKeyID
	case "model", "line_item":
		return u.Model
	case "batch":
		return strconv.FormatBool(u.Batch)
	case "service_tier":
		if u.ServiceTier == "" {
			return "default"
		}
		return u.ServiceTier
	case "size":
		return u.Units.Size
	case "source":
		return u.Source
	}
	return ""
}

// orgTotals adds up the units of a group.
type orgTotals struct {
	input, cached, audioIn, imageIn, output, audioOut int
	chars, images, requests                           int
	seconds, usd                                      float64
}

func (t *orgTotals) add(u OrgUsage) {
	n := u.Requests
	if n == 0 {
		n = 1
	}
	t.requests += n
	t.input += u.Units.InputTokens
	t.cached += u.Units.CachedTokens
	t.audioIn += u.Units.AudioTokens
	t.imageIn += u.Units.ImageTokens
	t.output += u.Units.OutputTokens
	if u.Endpoint == "audio_speeches" {
		t.audioOut += u.Units.OutputTokens
	}
	t.chars += u.Units.Characters
	t.images += u.Units.Images
	t.seconds += u.Units.Seconds
	t.usd += u.USD
}

// result is one result object of the endpoint's type, without the group
// fields.
func (q orgQuery) result(t orgTotals) obj {
	switch q.endpoint {
	case "costs":
		return obj{"object": "organization.costs.result", "amount": obj{"value": t.usd, "currency": "usd"},
			"quantity": nil, "quantity_unit": nil}
	case "completions":
		uncached := t.input - t.cached
		return obj{"object": "organization.usage.completions.result", "input_tokens": t.input, "input_cached_tokens": t.cached,
			"input_cache_write_tokens": 0, "input_uncached_tokens": uncached, "output_tokens": t.output,
			"input_text_tokens": max(uncached-t.audioIn-t.imageIn, 0), "output_text_tokens": t.output - t.audioOut,
			"input_cached_text_tokens": t.cached, "input_audio_tokens": t.audioIn, "input_cached_audio_tokens": 0,
			"output_audio_tokens": t.audioOut, "input_image_tokens": t.imageIn, "input_cached_image_tokens": 0,
			"output_image_tokens": 0, "num_model_requests": t.requests}
	case "embeddings":
		return obj{"object": "organization.usage.embeddings.result", "input_tokens": t.input, "num_model_requests": t.requests}
	case "images":
		return obj{"object": "organization.usage.images.result", "images": t.images, "num_model_requests": t.requests}
	case "audio_speeches":
		return obj{"object": "organization.usage.audio_speeches.result", "characters": t.chars, "num_model_requests": t.requests}
	default: // audio_transcriptions
		return obj{"object": "organization.usage.audio_transcriptions.result", "seconds": int(math.Ceil(t.seconds)), "num_model_requests": t.requests}
	}
}

// orgFail answers with the API's error body and returns the status.
func orgFail(w http.ResponseWriter, status int, typ, code, param, message string) int {
	orNull := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	body, _ := json.Marshal(obj{"error": obj{"message": message, "type": typ, "param": orNull(param), "code": orNull(code)}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
	return status
}
