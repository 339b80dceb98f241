package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/money"
)

// WriteHTML writes the report as one self-contained HTML page: inline CSS,
// the chart embedded as a PNG data URI, no scripts, nothing fetched.
func (r *Report) WriteHTML(w io.Writer) error {
	var png bytes.Buffer
	if err := r.WriteChart(&png); err != nil {
		return err
	}
	uri := template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png.Bytes()))
	t, err := page.Clone()
	if err != nil {
		return err
	}
	t.Funcs(template.FuncMap{"chart": func() template.URL { return uri }})
	return t.Execute(w, r)
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"usd":   func(u money.USD) string { return u.String() },
	"hm":    func(r *Report, t time.Time) string { return t.In(r.Location).Format("15:04") },
	"hms":   func(r *Report, t time.Time) string { return t.In(r.Location).Format("15:04:05") },
	"date":  func(r *Report) string { return longDate(r) },
	"pct":   func(f float64) string { return strconv.FormatFloat(100*f, 'f', 0, 64) + "%" },
	"bar":   func(f float64) template.CSS { return template.CSS(fmt.Sprintf("width:%.1f%%", 100*f)) },
	"title": EventTitle,
	"guard": func(kind string) bool { return slices.Contains(GuardKinds, kind) },
	"units": units,
	"num":   thousands,
	"capShare": func(r *Report) string {
		if r.Cap <= 0 {
			return "no cap set"
		}
		return fmt.Sprintf("%.0f%% of the %s cap", 100*float64(r.Spent)/float64(r.Cap), r.Cap)
	},
	"binName": binName,
	"chart":   func() template.URL { return "" },
	"num64":   func(n int64) string { return thousands(int(n)) },
	"stamp":   func(r *Report) string { return r.Generated.In(r.Location).Format("2006-01-02 15:04") },
	"isToday": func(r *Report) bool { return r.Generated.In(r.Location).Format(time.DateOnly) == r.Day },
	"args": func(title string, lines []Line) any {
		return struct {
			Title string
			Lines []Line
		}{title, lines}
	},
	"args2": func(which string, e *ledger.Entry, r *Report) any {
		return struct {
			Which string
			E     *ledger.Entry
			R     *Report
		}{which, e, r}
	},
	"localDay": func(r *Report, t time.Time) string {
		return dayClock(r, t)
	},
}).Parse(pageHTML))

func longDate(r *Report) string {
	d, err := time.ParseInLocation(time.DateOnly, r.Day, r.Location)
	if err != nil {
		return r.Day
	}
	return d.Format("Monday 2 January 2006")
}

// dayClock is a time of day, naming the day when it is not the report's.
func dayClock(r *Report, t time.Time) string {
	lt := t.In(r.Location)
	if lt.Format(time.DateOnly) == r.Day {
		return lt.Format("15:04")
	}
	if d, err := time.ParseInLocation(time.DateOnly, r.Day, r.Location); err == nil && lt.Equal(d.AddDate(0, 0, 1)) {
		return "midnight"
	}
	return lt.Format("Jan 2 15:04")
}

// thousands formats n with thin separators: 12 345.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteRune(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// units says what a request consumed, in the units it is priced in.
func units(e ledger.Entry) string {
	u := e.Units
	var parts []string
	if u.Input > 0 || u.Output > 0 {
		s := fmt.Sprintf("%s in / %s out tokens", thousands(int(u.Input)), thousands(int(u.Output)))
		if u.Cached > 0 {
			s += fmt.Sprintf(" (%s cached)", thousands(int(u.Cached)))
		}
		parts = append(parts, s)
	}
	if u.Characters > 0 {
		parts = append(parts, thousands(int(u.Characters))+" characters")
	}
	if u.Images > 0 {
		parts = append(parts, fmt.Sprintf("%d image(s)", u.Images))
	}
	if u.Seconds > 0 {
		parts = append(parts, fmt.Sprintf("%.1f s of audio", u.Seconds))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, ", ")
}

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="keycap">
<title>keycap report — {{.Day}}</title>
<style>
:root { --ink:#1f2937; --soft:#6b7280; --line:#e5e7eb; --bg:#f9fafb; --blue:#1d4ed8; --amber:#f59e0b; --red:#dc2626; --violet:#7c3aed; --green:#10a37f; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 32px 28px 48px; }
header { display: flex; justify-content: space-between; align-items: baseline; gap: 16px; border-bottom: 3px solid var(--ink); padding-bottom: 10px; }
header h1 { margin: 0; font-size: 26px; letter-spacing: -0.01em; }
header .meta { color: var(--soft); font-size: 13px; text-align: right; }
.brand { font-weight: 700; color: var(--blue); }
.headline { font-size: 18px; margin: 20px 0 18px; padding: 14px 18px; background: #fff; border-left: 5px solid var(--amber); border-radius: 6px; box-shadow: 0 1px 2px rgba(0,0,0,.06); }
.cards { display: grid; grid-template-columns: repeat(5, 1fr); gap: 12px; margin-bottom: 22px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .k { color: var(--soft); font-size: 12px; text-transform: uppercase; letter-spacing: .05em; }
.card .v { font-size: 24px; font-weight: 700; margin-top: 2px; font-variant-numeric: tabular-nums; }
.card .s { color: var(--soft); font-size: 13px; }
.card.alert .v { color: var(--red); }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 18px 20px; margin-bottom: 18px; break-inside: avoid; }
section h2 { font-size: 17px; margin: 0 0 10px; }
section p.note { color: var(--soft); font-size: 13px; margin: 8px 0 0; }
.chart img { width: 100%; height: auto; display: block; }
.grid3 { display: grid; grid-template-columns: repeat(3, 1fr); gap: 18px; }
.grid2 { display: grid; grid-template-columns: repeat(2, 1fr); gap: 18px; }
table { width: 100%; border-collapse: collapse; font-size: 14px; }
th { text-align: left; font-size: 12px; color: var(--soft); font-weight: 600; text-transform: uppercase; letter-spacing: .04em; border-bottom: 1px solid var(--line); padding: 6px 8px 6px 0; }
td { border-bottom: 1px solid #f3f4f6; padding: 6px 8px 6px 0; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.t { white-space: nowrap; font-variant-numeric: tabular-nums; color: var(--soft); }
.share { height: 6px; background: #fde68a; border-radius: 3px; margin-top: 3px; }
.share > div { height: 6px; background: var(--amber); border-radius: 3px; }
.name { font-weight: 600; overflow-wrap: anywhere; }
.grid3 table { font-size: 13px; }
.badge { display: inline-block; font-size: 11px; font-weight: 700; padding: 1px 7px; border-radius: 10px; background: #eef2ff; color: var(--blue); white-space: nowrap; }
.badge.guard { background: #f5f3ff; color: var(--violet); }
.badge.cap_reached, .badge.spend_rate, .badge.loop_blocked, .badge.untracked_spend { background: #fef2f2; color: var(--red); }
.badge.rehearsal { background: #ecfdf5; color: #047857; }
.req { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.req h3 { margin: 0 0 6px; font-size: 14px; color: var(--soft); text-transform: uppercase; letter-spacing: .04em; }
.req .cost { font-size: 22px; font-weight: 700; }
.req dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 8px 0 0; font-size: 14px; }
.req dt { color: var(--soft); }
.req dd { margin: 0; word-break: break-word; }
.vs td.n { font-size: 16px; font-weight: 700; }
.vs tr.untracked td { color: var(--red); }
.off { color: var(--soft); }
footer { color: var(--soft); font-size: 12px; margin-top: 8px; }
@media (max-width: 900px) { .cards { grid-template-columns: repeat(2, 1fr); } .grid3, .grid2 { grid-template-columns: 1fr; } }
@media print { body { background: #fff; } main { padding: 0; } section, .card { border-color: #ccc; } }
</style>
</head>
<body>
<main>
<header>
  <h1><span class="brand">keycap</span> spend report · {{date .}}</h1>
  <div class="meta">Day {{.Day}} ({{.Location}})<br>Written {{stamp .}}</div>
</header>

<p class="headline">{{.Headline}}</p>

<div class="cards">
  <div class="card{{if and (gt .Cap 0) (ge .Spent .Cap)}} alert{{end}}"><div class="k">Spent</div><div class="v">{{usd .Spent}}</div><div class="s">{{capShare .}}</div></div>
  <div class="card"><div class="k">Requests</div><div class="v">{{num .Requests}}</div><div class="s">{{if .Estimated}}{{num .Estimated}} at keycap's estimate{{else}}all priced from reported usage{{end}}</div></div>
  <div class="card"><div class="k">Busiest {{binName .PeakWidth}}</div><div class="v">{{usd .Peak.Spent}}</div><div class="s">{{if .Peak.Spent}}at {{hm . .Peak.Start}}, {{num .Peak.Requests}} request(s){{else}}no spend{{end}}</div></div>
  <div class="card{{if .Guards}} alert{{end}}"><div class="k">Guard events</div><div class="v">{{num .Guards}}</div><div class="s">{{if .CapReachedAt.IsZero}}cap not reached{{else}}cap reached at {{hm . .CapReachedAt}}{{end}}</div></div>
  <div class="card{{if and .OpenAI (gt .OpenAI.Untracked 0)}} alert{{end}}"><div class="k">OpenAI reports</div>{{if .OpenAI}}<div class="v">{{usd .OpenAI.ReportedToday}}</div><div class="s">as of {{hm . .OpenAI.AsOf}}{{if gt .OpenAI.Untracked 0}}; {{usd .OpenAI.Untracked}} untracked{{end}}</div>{{else}}<div class="v off">—</div><div class="s">not compared (see below)</div>{{end}}</div>
</div>

<section class="chart">
  <h2>Spend over time</h2>
  <img src="{{chart}}" alt="Chart: spend per {{binName .Bin}} as bars and the day's running total as a line{{if gt .Cap 0}}, with the {{usd .Cap}} daily cap{{end}}.">
  <p class="note">Bars: what requests started in each {{binName .Bin}} cost (right scale). Line: the day's running total (left scale){{if .OpenAI}}; dashed green: OpenAI's own usage, priced with keycap's prices{{end}}. Violet lines mark when keycap's guards stepped in.{{if .RehearsedRequests}} Rehearsals ({{num .RehearsedRequests}} request(s), sent to keycap's free stand-in) are not drawn.{{end}}</p>
</section>

<section>
  <h2>What keycap saw and did</h2>
  {{if .Events}}
  <table>
    <tr><th>Time</th><th>Event</th><th>Script</th><th>What happened</th><th class="n">Amount</th></tr>
    {{range .Events}}<tr><td class="t">{{hms $ .At}}</td><td><span class="badge {{if guard .Kind}}guard {{end}}{{.Kind}}">{{title .Kind}}</span></td><td>{{.Label}}</td><td>{{.Message}}</td><td class="n">{{if .Amount}}{{usd .Amount}}{{end}}</td></tr>
    {{end}}
  </table>
  {{else}}<p class="off">No events: no loop, no runaway spend, no cap reached.</p>{{end}}
</section>

<div class="grid3">
  {{template "top" (args "Scripts" .Scripts)}}
  {{template "top" (args "Models" .Models)}}
  {{template "top" (args "Endpoints" .Endpoints)}}
</div>

<section>
  <h2>First and last expensive request</h2>
  {{if .FirstExpensive}}
  <div class="grid2">
    {{template "req" (args2 "First" .FirstExpensive $)}}
    {{template "req" (args2 "Last" .LastExpensive $)}}
  </div>
  <p class="note">Expensive: {{usd .ExpensiveAt}} or more. {{num .Expensive}} request(s) were.</p>
  {{else}}<p class="off">No request cost {{usd .ExpensiveAt}} or more.</p>{{end}}
</section>

<section>
  <h2>Costliest requests</h2>
  {{if .Costliest}}
  <table>
    <tr><th>Started</th><th>Script</th><th>Endpoint</th><th>Model</th><th>Usage</th><th class="n">Status</th><th class="n">Cost</th></tr>
    {{range .Costliest}}<tr><td class="t">{{hms $ .Start}}</td><td class="name">{{.Label}}{{if .Rehearsed}} <span class="badge rehearsal">rehearsal</span>{{end}}</td><td>{{.Endpoint}}</td><td>{{.Model}}</td><td>{{units .}}</td><td class="n">{{if .Status}}{{.Status}}{{else}}—{{end}}</td><td class="n">{{usd .Charged}}{{if not .Exact}}*{{end}}</td></tr>
    {{end}}
  </table>
  <p class="note">* charged at keycap's estimate: no exact usage came back (an error, a stream cut short, or a request still in flight). Rehearsals cost nothing and are not in the totals.</p>
  {{else}}<p class="off">No requests.</p>{{end}}
</section>

<section>
  <h2>keycap and OpenAI</h2>
  {{with .OpenAI}}
  <table class="vs">
    <tr><th>Figure</th><th>Covers</th><th class="n">Amount</th></tr>
    <tr><td>keycap metered</td><td>{{$.Day}}, 00:00 to {{if isToday $}}now{{else}}midnight{{end}} ({{$.Location}})</td><td class="n">{{usd $.Spent}}</td></tr>
    <tr><td>OpenAI usage, priced with keycap's prices</td><td>00:00 to {{localDay $ .ReportedTo}}; read at {{hm $ .AsOf}}; latest usage seen {{if .LatestUsage.IsZero}}none{{else}}{{localDay $ .LatestUsage}}{{end}}</td><td class="n">{{usd .ReportedToday}}</td></tr>
    {{range .CostsDays}}<tr><td>OpenAI costs, UTC day {{.Day}}</td><td>{{localDay $ .From}} to {{localDay $ .To}} your time</td><td class="n">{{usd .Amount}}</td></tr>
    {{end}}
    <tr class="{{if gt .Untracked 0}}untracked{{end}}"><td>Untracked: OpenAI beyond keycap</td><td>00:00 to {{localDay $ .CheckedThrough}} (usage younger than the delay allowance is not compared)</td><td class="n">{{usd .Untracked}}</td></tr>
  </table>
  {{if .Sources}}
  <table style="margin-top:12px">
    <tr><th>Where untracked spend came from</th><th>API key</th><th>Project</th><th class="n">Requests</th><th class="n">Untracked</th></tr>
    {{range .Sources}}<tr><td class="name">{{.Model}}</td><td>{{.APIKeyID}}</td><td>{{.ProjectID}}</td><td class="n">{{num64 .Requests}}</td><td class="n">{{usd .Amount}}</td></tr>
    {{end}}
  </table>
  {{end}}
  {{range .Unpriced}}<p class="note">{{.Requests}} {{.Kind}} request(s) of {{.Model}} could not be priced and are left out of OpenAI's figure.</p>{{end}}
  <p class="note">OpenAI's Costs API counts whole UTC days, and its usage arrives minutes to hours late; keycap prices the usage of your local day with its own price table to compare like with like.{{if .LastError}} Last error reading OpenAI: {{.LastError}}.{{end}}</p>
  {{else}}
  <p class="off">{{if .OpenAINote}}{{.OpenAINote}}{{else}}OpenAI's figures were not read for this report.{{end}}</p>
  {{end}}
</section>

<footer>Written by keycap from its ledger. Amounts are what keycap charged each request against the daily cap: the price of the usage OpenAI reported in the response, or keycap's worst-case estimate where none came back.</footer>
</main>
</body>
</html>
{{define "top"}}<section>
  <h2>{{.Title}}</h2>
  {{if .Lines}}<table>
    <tr><th>{{.Title}}</th><th class="n">Req.</th><th class="n">Spent</th></tr>
    {{range .Lines}}<tr><td><div class="name">{{.Name}}</div><div class="share"><div style="{{bar .Share}}"></div></div></td><td class="n">{{num .Requests}}</td><td class="n">{{usd .Spent}}<br><span class="off">{{pct .Share}}</span></td></tr>
    {{end}}
  </table>{{else}}<p class="off">None.</p>{{end}}
</section>{{end}}
{{define "req"}}<div class="req">
  <h3>{{.Which}} · {{hms .R .E.Start}}</h3>
  <div class="cost">{{usd .E.Charged}}{{if .E.Rehearsed}} <span class="badge rehearsal">rehearsal</span>{{end}}</div>
  <dl>
    <dt>Script</dt><dd>{{.E.Label}}</dd>
    <dt>Endpoint</dt><dd>{{.E.Method}} {{.E.Path}}</dd>
    <dt>Model</dt><dd>{{.E.Model}}</dd>
    <dt>Usage</dt><dd>{{units .E}}</dd>
    <dt>Status</dt><dd>{{if .E.Status}}{{.E.Status}}{{else}}no answer{{end}}{{if .E.RequestID}} · {{.E.RequestID}}{{end}}</dd>
    {{if .E.Note}}<dt>Note</dt><dd>{{.E.Note}}</dd>{{end}}
  </dl>
</div>{{end}}
`
