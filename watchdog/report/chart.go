package report

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"

	"github.com/keycap/keycap/watchdog/money"
)

// Chart sizes, in CSS pixels; the PNG is drawn at twice that for sharp
// text on high-density screens and in print.
const (
	ChartWidth  = 1040
	ChartHeight = 420
	scale       = 2
)

// Colours of the chart, shared with the HTML page.
var (
	colBar      = color.RGBA{0xf5, 0x9e, 0x0b, 0xff} // spend per bin
	colLine     = color.RGBA{0x1d, 0x4e, 0xd8, 0xff} // cumulative spend
	colOpenAI   = color.RGBA{0x10, 0xa3, 0x7f, 0xff} // OpenAI's cumulative figure
	colCap      = color.RGBA{0xdc, 0x26, 0x26, 0xff}
	colEvent    = color.RGBA{0x7c, 0x3a, 0xed, 0xff}
	colGrid     = color.RGBA{0xe5, 0xe7, 0xeb, 0xff}
	colAxis     = color.RGBA{0x9c, 0xa3, 0xaf, 0xff}
	colText     = color.RGBA{0x37, 0x41, 0x51, 0xff}
	colTextSoft = color.RGBA{0x6b, 0x72, 0x80, 0xff}
)

var faces = sync.OnceValues(func() (map[string]font.Face, error) {
	out := map[string]font.Face{}
	for name, spec := range map[string]struct {
		ttf  []byte
		size float64
	}{"label": {goregular.TTF, 11}, "small": {goregular.TTF, 10}, "title": {gobold.TTF, 14}, "bold": {gobold.TTF, 11}} {
		f, err := opentype.Parse(spec.ttf)
		if err != nil {
			return nil, err
		}
		face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: spec.size * scale, DPI: 72, Hinting: font.HintingFull})
		if err != nil {
			return nil, err
		}
		out[name] = face
	}
	return out, nil
})

// canvas draws on an RGBA image in CSS pixels.
type canvas struct {
	img   *image.RGBA
	faces map[string]font.Face
}

func (c *canvas) fill(x0, y0, x1, y1 float64, col color.Color) {
	r := image.Rect(int(math.Round(x0*scale)), int(math.Round(y0*scale)), int(math.Round(x1*scale)), int(math.Round(y1*scale)))
	draw.Draw(c.img, r, image.NewUniform(col), image.Point{}, draw.Over)
}

// stroke draws a polyline of width w, in dashes of on/off length when dash
// is given, anti-aliased.
func (c *canvas) stroke(pts [][2]float64, w float64, col color.Color, dash ...float64) {
	var quads [][4][2]float64
	seg := func(x0, y0, x1, y1 float64) {
		dx, dy := x1-x0, y1-y0
		l := math.Hypot(dx, dy)
		if l == 0 {
			return
		}
		nx, ny := -dy/l*w/2, dx/l*w/2
		// Extend each segment by half the width so joints have no gaps.
		ex, ey := dx/l*w/2, dy/l*w/2
		x0, y0, x1, y1 = x0-ex, y0-ey, x1+ex, y1+ey
		quads = append(quads, [4][2]float64{{x0 + nx, y0 + ny}, {x1 + nx, y1 + ny}, {x1 - nx, y1 - ny}, {x0 - nx, y0 - ny}})
	}
	on := true
	left := 0.0
	if len(dash) == 2 {
		left = dash[0]
	}
	for i := 1; i < len(pts); i++ {
		x0, y0, x1, y1 := pts[i-1][0], pts[i-1][1], pts[i][0], pts[i][1]
		if len(dash) != 2 {
			seg(x0, y0, x1, y1)
			continue
		}
		l := math.Hypot(x1-x0, y1-y0)
		for t := 0.0; t < l; {
			step := math.Min(left, l-t)
			if on {
				seg(x0+(x1-x0)*t/l, y0+(y1-y0)*t/l, x0+(x1-x0)*(t+step)/l, y0+(y1-y0)*(t+step)/l)
			}
			t += step
			left -= step
			if left <= 0 {
				on = !on
				left = dash[1]
				if on {
					left = dash[0]
				}
			}
		}
	}
	if len(quads) == 0 {
		return
	}
	// Rasterize only the bounding box: a canvas-sized rasterizer per line
	// would cost a full-image pass each.
	minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, q := range quads {
		for _, p := range q {
			minX, minY, maxX, maxY = math.Min(minX, p[0]), math.Min(minY, p[1]), math.Max(maxX, p[0]), math.Max(maxY, p[1])
		}
	}
	r := image.Rect(int(math.Floor(minX*scale))-1, int(math.Floor(minY*scale))-1, int(math.Ceil(maxX*scale))+1, int(math.Ceil(maxY*scale))+1)
	r = r.Intersect(c.img.Bounds())
	if r.Empty() {
		return
	}
	z := vector.NewRasterizer(r.Dx(), r.Dy())
	p := func(q [2]float64) (float32, float32) {
		return float32(q[0]*scale - float64(r.Min.X)), float32(q[1]*scale - float64(r.Min.Y))
	}
	for _, q := range quads {
		z.MoveTo(p(q[0]))
		z.LineTo(p(q[1]))
		z.LineTo(p(q[2]))
		z.LineTo(p(q[3]))
		z.ClosePath()
	}
	z.Draw(c.img, r, image.NewUniform(col), image.Point{})
}

// text draws s with its baseline at y; align is -1 (left), 0 (centre) or
// 1 (right) of x. It returns the width in CSS pixels.
func (c *canvas) text(x, y float64, s, face string, col color.Color, align int) float64 {
	f := c.faces[face]
	w := float64(font.MeasureString(f, s)) / 64 / scale
	switch align {
	case 0:
		x -= w / 2
	case 1:
		x -= w
	}
	d := font.Drawer{Dst: c.img, Src: image.NewUniform(col), Face: f,
		Dot: fixed.Point26_6{X: fixed.Int26_6(x * scale * 64), Y: fixed.Int26_6(y * scale * 64)}}
	d.DrawString(s)
	return w
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// niceScale returns the top of an axis showing up to v and its step: four
// to six steps of 1, 2, 2.5 or 5 times a power of ten.
func niceScale(v float64) (top, step float64) {
	step = niceCeil(v / 5)
	top = math.Ceil(v/step*(1-1e-9)) * step
	if top <= 0 {
		top = step
	}
	return top, step
}

// dollars formats an axis value.
func dollars(v, step float64) string {
	switch {
	case step >= 1:
		return fmt.Sprintf("$%.0f", v)
	case step >= 0.1:
		return fmt.Sprintf("$%.1f", v)
	case step >= 0.01:
		return fmt.Sprintf("$%.2f", v)
	case step >= 0.001:
		return fmt.Sprintf("$%.3f", v)
	}
	return fmt.Sprintf("$%.4f", v)
}

// WriteChart writes the spend timeline as a PNG: spend per bin as bars
// (right axis), the day's cumulative spend as a line (left axis), the cap,
// OpenAI's cumulative figure when there is one, and keycap's guard events.
func (r *Report) WriteChart(w io.Writer) error {
	img, err := r.Chart()
	if err != nil {
		return err
	}
	return (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(w, img)
}

// panel is one chart of a timeline.
type panel struct {
	title string
	bins  []Bin
	width time.Duration
}

// Chart draws the spend timeline; see WriteChart. When the report has a
// zoom on its busiest hour, that is drawn as a second panel below.
func (r *Report) Chart() (*image.RGBA, error) {
	fs, err := faces()
	if err != nil {
		return nil, fmt.Errorf("load chart fonts: %w", err)
	}
	panels := []panel{{fmt.Sprintf("Spend on %s (%s)", r.Day, r.Location), r.Bins, r.Bin}}
	if len(r.Zoom) > 0 {
		z := r.Zoom
		hm := func(t time.Time) string { return t.In(r.Location).Format("15:04") }
		panels = append(panels, panel{fmt.Sprintf("The busiest hour, minute by minute (%s to %s)", hm(z[0].Start), hm(z[len(z)-1].Start.Add(time.Minute))), z, time.Minute})
	}
	c := &canvas{img: image.NewRGBA(image.Rect(0, 0, ChartWidth*scale, ChartHeight*len(panels)*scale)), faces: fs}
	draw.Draw(c.img, c.img.Bounds(), image.White, image.Point{}, draw.Src)
	for i, p := range panels {
		oy := float64(i * ChartHeight)
		if i > 0 {
			c.fill(0, oy, ChartWidth, oy+1, colGrid)
		}
		r.drawPanel(c, oy, p, i == len(panels)-1)
	}
	return c.img, nil
}

// drawPanel draws one timeline with its top at oy; labels says whether to
// name the guard events (the zoom panel does, when there is one).
func (r *Report) drawPanel(c *canvas, oy float64, p panel, labels bool) {
	const left, right = 72.0, ChartWidth - 72.0
	top, bottom := oy+58, oy+ChartHeight-44
	loc := r.Location
	fs := c.faces

	c.text(left, oy+24, p.title, "title", colText, -1)
	if len(p.bins) == 0 {
		c.stroke([][2]float64{{left, bottom}, {right, bottom}}, 1, colAxis)
		c.text((left+right)/2, (top+bottom)/2, "No requests went through keycap on this day.", "label", colTextSoft, 0)
		return
	}
	from, to := p.bins[0].Start, p.bins[len(p.bins)-1].Start.Add(p.width)
	xOf := func(t time.Time) float64 {
		return left + (right-left)*float64(t.Sub(from))/float64(to.Sub(from))
	}

	// Left scale: cumulative spend, with the cap when it is in view.
	maxCum := p.bins[len(p.bins)-1].Cumulative.Dollars()
	var openai []Bin
	if r.OpenAI != nil {
		openai = r.openAICumulative(from, to, p.width)
		for _, b := range openai {
			maxCum = math.Max(maxCum, b.Cumulative.Dollars())
		}
	}
	capInView := r.Cap > 0 && r.Cap.Dollars() <= 4*math.Max(maxCum, 0.01)
	if capInView {
		maxCum = math.Max(maxCum, r.Cap.Dollars())
	}
	lTop, lStep := niceScale(maxCum * 1.05)
	yL := func(v float64) float64 { return bottom - (bottom-top)*v/lTop }
	// Right scale: spend per bin.
	var maxBin float64
	for _, b := range p.bins {
		maxBin = math.Max(maxBin, b.Spent.Dollars())
	}
	// As many steps as the left scale, so both share the grid lines.
	n := math.Round(lTop / lStep)
	rStep := niceCeil(maxBin * 1.05 / n)
	rTop := rStep * n
	yR := func(v float64) float64 { return bottom - (bottom-top)*v/rTop }

	for i := 0; float64(i)*lStep <= lTop*(1+1e-9); i++ {
		y := yL(float64(i) * lStep)
		if i > 0 {
			c.stroke([][2]float64{{left, y}, {right, y}}, 1, colGrid)
		}
		c.text(left-8, y+4, dollars(float64(i)*lStep, lStep), "label", colLine, 1)
	}
	for i := 0; float64(i)*rStep <= rTop*(1+1e-9); i++ {
		c.text(right+8, yR(float64(i)*rStep)+4, dollars(float64(i)*rStep, rStep), "label", colBar, -1)
	}
	c.text(left-8, top-12, "total", "small", colLine, 1)
	c.text(right+8, top-12, "per "+shortBin(p.width), "small", colBar, -1)

	// Time axis: a label every 5, 10, 15, 30… minutes, at most about 12.
	span := to.Sub(from)
	tick := time.Minute
	for _, m := range []int{1, 2, 5, 10, 15, 30, 60, 120, 180, 240} {
		tick = time.Duration(m) * time.Minute
		if span/tick <= 12 {
			break
		}
	}
	for t := from.Truncate(tick); !t.After(to); t = t.Add(tick) {
		if t.Before(from) {
			continue
		}
		x := xOf(t)
		c.stroke([][2]float64{{x, top}, {x, bottom}}, 1, color.RGBA{0xf3, 0xf4, 0xf6, 0xff})
		c.stroke([][2]float64{{x, bottom}, {x, bottom + 5}}, 1, colAxis)
		c.text(x, bottom+19, t.In(loc).Format("15:04"), "label", colTextSoft, 0)
	}

	// Bars.
	bw := (right - left) / float64(len(p.bins))
	gap := math.Min(bw*0.2, 2)
	for i, b := range p.bins {
		if b.Spent <= 0 {
			continue
		}
		x := left + float64(i)*bw
		y := yR(b.Spent.Dollars())
		c.fill(x+gap/2, math.Min(y, bottom-1), x+bw-gap/2, bottom, colBar)
	}
	c.stroke([][2]float64{{left, bottom}, {right, bottom}}, 1, colAxis)

	// The cap, the cumulative lines.
	if capInView {
		y := yL(r.Cap.Dollars())
		c.stroke([][2]float64{{left, y}, {right, y}}, 1.5, colCap, 6, 4)
		c.text(left+6, y-6, "daily cap "+r.Cap.String(), "bold", colCap, -1)
	}
	if len(openai) > 0 {
		c.stroke(steps(openai, p.width, xOf, yL, left), 2, colOpenAI, 7, 4)
	}
	c.stroke(steps(p.bins, p.width, xOf, yL, left), 2.5, colLine)

	// Guard events: a dotted line each, the first of each kind, then their
	// labels on top of everything.
	seen := map[string]bool{}
	type tag struct {
		x     float64
		label string
	}
	var tags []tag
	for _, ev := range r.Events {
		if !slices.Contains(GuardKinds, ev.Kind) || seen[ev.Kind] || ev.At.Before(from) || ev.At.After(to) {
			continue
		}
		seen[ev.Kind] = true
		x := xOf(ev.At)
		c.stroke([][2]float64{{x, top}, {x, bottom}}, 1.2, colEvent, 3, 3)
		tags = append(tags, tag{x, EventTitle(ev.Kind) + " " + ev.At.In(loc).Format("15:04")})
	}
	if labels {
		labelY := top + 12
		for _, t := range tags {
			w := float64(font.MeasureString(fs["small"], t.label)) / 64 / scale
			lx := t.x + 5
			if lx+w > right {
				lx = t.x - 5 - w
			}
			c.fill(lx-3, labelY-10, lx+w+3, labelY+4, color.NRGBA{0xff, 0xff, 0xff, 0xe6})
			c.text(lx, labelY, t.label, "small", colEvent, -1)
			labelY += 15
		}
	}

	// Legend.
	lx := right
	ly := oy + 24
	legend := func(label string, col color.Color, kind string) {
		w := float64(font.MeasureString(fs["label"], label)) / 64 / scale
		lx -= w
		c.text(lx, ly, label, "label", colText, -1)
		lx -= 22
		switch kind {
		case "bar":
			c.fill(lx, ly-9, lx+14, ly+1, col)
		case "dash":
			c.stroke([][2]float64{{lx, ly - 4}, {lx + 16, ly - 4}}, 2, col, 5, 3)
		default:
			c.stroke([][2]float64{{lx, ly - 4}, {lx + 16, ly - 4}}, 2.5, col)
		}
		lx -= 18
	}
	if len(openai) > 0 {
		legend("OpenAI reports (total)", colOpenAI, "dash")
	}
	if r.Cap > 0 && !capInView {
		w := c.text(lx, ly, "cap "+r.Cap.String()+" (off scale)", "label", colCap, 1)
		lx -= w + 18
	}
	legend("total so far", colLine, "line")
	legend("spent per "+shortBin(p.width), colBar, "bar")
}

// steps turns cumulative bins into the points of a line that rises at the
// end of each bin, starting from what was spent before the window.
func steps(bins []Bin, width time.Duration, xOf func(time.Time) float64, yL func(float64) float64, left float64) [][2]float64 {
	start := bins[0].Cumulative - bins[0].Spent
	pts := [][2]float64{{left, yL(start.Dollars())}}
	for _, b := range bins {
		pts = append(pts, [2]float64{xOf(b.Start.Add(width)), yL(b.Cumulative.Dollars())})
	}
	return pts
}

// openAICumulative bins OpenAI's timeline like the report's.
func (r *Report) openAICumulative(from, to time.Time, width time.Duration) []Bin {
	if len(r.OpenAI.Timeline) == 0 {
		return nil
	}
	n := int((to.Sub(from) + width - 1) / width)
	out := make([]Bin, n)
	var before money.USD
	last := -1
	for _, p := range r.OpenAI.Timeline {
		i := int(p.Start.Sub(from) / width)
		switch {
		case p.Start.Before(from):
			before += p.Amount
		case i < n:
			out[i].Spent += p.Amount
			last = max(last, i)
		}
	}
	cum := before
	for i := range out {
		out[i].Start = from.Add(time.Duration(i) * width)
		cum += out[i].Spent
		out[i].Cumulative = cum
	}
	// Stop where OpenAI's figures stop, rather than draw a flat line into
	// minutes it has not reported yet.
	if !r.OpenAI.ReportedTo.IsZero() {
		for i := range out {
			if out[i].Start.After(r.OpenAI.ReportedTo) {
				return out[:max(i, last+1)]
			}
		}
	}
	return out
}

func shortBin(d time.Duration) string {
	switch d {
	case time.Minute:
		return "minute"
	case time.Hour:
		return "hour"
	}
	return fmt.Sprintf("%d min", int(d/time.Minute))
}

// EventTitle names an event kind for people.
func EventTitle(kind string) string {
	switch kind {
	case "loop_warning":
		return "loop warning"
	case "loop_blocked":
		return "loop blocked"
	case "spend_rate":
		return "runaway spend"
	case "retry_storm":
		return "retry storm"
	case "threshold":
		return "threshold"
	case "cap_reached":
		return "cap reached"
	case "paused":
		return "paused"
	case "resumed":
		return "resumed"
	case "token_denied":
		return "token refused"
	case "cap_changed":
		return "cap changed"
	case "recovered":
		return "recovered"
	case "rehearsal":
		return "rehearsal"
	case "untracked_spend":
		return "untracked spend"
	}
	return kind
}
