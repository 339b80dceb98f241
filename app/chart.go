package app

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keycap/keycap/app/viewmodel"
)

// barChart draws a viewmodel.Series: bars, an optional running-total line,
// the cap as a red line, the scale's top and tick labels. Hovering a bar
// names its period and spend.
type barChart struct {
	widget.BaseWidget
	series viewmodel.Series
	hover  int
	// onHover receives the hovered bar's tip, or "" when the pointer
	// leaves.
	onHover func(string)
}

var _ desktop.Hoverable = (*barChart)(nil)

func newBarChart() *barChart {
	c := &barChart{hover: -1}
	c.ExtendBaseWidget(c)
	return c
}

// set shows a new series.
func (c *barChart) set(s viewmodel.Series) {
	c.series = s
	c.Refresh()
}

// MinSize keeps a chart legible.
func (c *barChart) MinSize() fyne.Size { return fyne.NewSize(320, 170) }

// MouseIn implements desktop.Hoverable.
func (c *barChart) MouseIn(e *desktop.MouseEvent) { c.MouseMoved(e) }

// MouseMoved implements desktop.Hoverable.
func (c *barChart) MouseMoved(e *desktop.MouseEvent) {
	plot := chartPlot(c.Size())
	i := -1
	if n := len(c.series.Bars); n > 0 && e.Position.X >= plot.Position.X {
		i = int((e.Position.X - plot.Position.X) / (plot.Size.Width / float32(n)))
		if i >= n {
			i = -1
		}
	}
	if i == c.hover {
		return
	}
	c.hover = i
	if c.onHover != nil {
		tip := ""
		if i >= 0 {
			tip = c.series.Bars[i].Tip
		}
		c.onHover(tip)
	}
}

// MouseOut implements desktop.Hoverable.
func (c *barChart) MouseOut() {
	c.hover = -1
	if c.onHover != nil {
		c.onHover("")
	}
}

// CreateRenderer implements fyne.Widget.
func (c *barChart) CreateRenderer() fyne.WidgetRenderer {
	r := &chartRenderer{c: c}
	r.rebuild()
	return r
}

// chartRect is a rectangle in a chart.
type chartRect struct {
	Position fyne.Position
	Size     fyne.Size
}

const (
	axisWidth  = 52 // room for the scale's labels on the left
	tickHeight = 18 // room for the tick labels below
	capRoom    = 4  // room above the top of the scale
)

// chartPlot is the area the bars fill.
func chartPlot(size fyne.Size) chartRect {
	return chartRect{
		Position: fyne.NewPos(axisWidth, capRoom),
		Size:     fyne.NewSize(max(0, size.Width-axisWidth-4), max(0, size.Height-tickHeight-capRoom)),
	}
}

type chartRenderer struct {
	c        *barChart
	grid     []*canvas.Line
	bars     []*canvas.Rectangle
	ticks    []*canvas.Text
	line     []*canvas.Line
	capLine  *canvas.Line
	capText  *canvas.Text
	topText  *canvas.Text
	zeroText *canvas.Text
	objects  []fyne.CanvasObject
}

func (r *chartRenderer) rebuild() {
	s := r.c.series
	fg := theme.Color(theme.ColorNameForeground)
	muted := theme.Color(theme.ColorNamePlaceHolder)
	small := theme.TextSize() * 0.85
	r.grid = r.grid[:0]
	for range 4 {
		l := canvas.NewLine(theme.Color(theme.ColorNameSeparator))
		l.StrokeWidth = 1
		r.grid = append(r.grid, l)
	}
	r.bars, r.ticks, r.line = nil, nil, nil
	for _, b := range s.Bars {
		col := color.Color(barColor)
		switch {
		case b.Over:
			col = overColor
		case b.Current:
			col = currentColor
		}
		rect := canvas.NewRectangle(col)
		rect.CornerRadius = 1.5
		r.bars = append(r.bars, rect)
		t := canvas.NewText(b.Label, muted)
		t.TextSize = small
		t.Alignment = fyne.TextAlignCenter
		if b.Current {
			t.Color = fg
			t.TextStyle.Bold = true
		}
		r.ticks = append(r.ticks, t)
	}
	for range max(0, len(s.Line)-1) {
		l := canvas.NewLine(lineColor)
		l.StrokeWidth = 2
		r.line = append(r.line, l)
	}
	r.capLine = canvas.NewLine(capColor)
	r.capLine.StrokeWidth = 2
	r.capText = canvas.NewText(s.CapLabel, capColor)
	r.capText.TextSize = small
	r.capText.TextStyle.Bold = true
	r.capText.Alignment = fyne.TextAlignTrailing
	r.topText = canvas.NewText(s.Top, muted)
	r.topText.TextSize = small
	r.topText.Alignment = fyne.TextAlignTrailing
	r.zeroText = canvas.NewText("$0", muted)
	r.zeroText.TextSize = small
	r.zeroText.Alignment = fyne.TextAlignTrailing

	r.objects = r.objects[:0]
	for _, g := range r.grid {
		r.objects = append(r.objects, g)
	}
	for _, b := range r.bars {
		r.objects = append(r.objects, b)
	}
	for _, t := range r.ticks {
		r.objects = append(r.objects, t)
	}
	for _, l := range r.line {
		r.objects = append(r.objects, l)
	}
	r.objects = append(r.objects, r.capLine, r.capText, r.topText, r.zeroText)
}

func (r *chartRenderer) Layout(size fyne.Size) {
	s := r.c.series
	plot := chartPlot(size)
	x0, y0 := plot.Position.X, plot.Position.Y
	w, h := plot.Size.Width, plot.Size.Height
	base := y0 + h
	for i, g := range r.grid {
		y := base - h*float32(i+1)/float32(len(r.grid))
		g.Position1, g.Position2 = fyne.NewPos(x0, y), fyne.NewPos(x0+w, y)
	}
	n := len(s.Bars)
	if n > 0 {
		slot := w / float32(n)
		gap := max(1, slot*0.18)
		for i, b := range s.Bars {
			bh := h * float32(b.Frac)
			if b.Value > 0 {
				bh = max(bh, 1.5) // a cent still shows
			}
			r.bars[i].Move(fyne.NewPos(x0+float32(i)*slot+gap/2, base-bh))
			r.bars[i].Resize(fyne.NewSize(slot-gap, bh))
			r.ticks[i].Move(fyne.NewPos(x0+float32(i)*slot+slot/2, base+2))
		}
		for i, l := range r.line {
			l.Position1 = fyne.NewPos(x0+(float32(i)+1)*slot, base-h*float32(s.Line[i]))
			l.Position2 = fyne.NewPos(x0+(float32(i)+2)*slot, base-h*float32(s.Line[i+1]))
		}
	}
	capY := base - h*float32(s.CapFrac)
	r.capLine.Position1, r.capLine.Position2 = fyne.NewPos(x0, capY), fyne.NewPos(x0+w, capY)
	ts := fyne.MeasureText(r.capText.Text, r.capText.TextSize, r.capText.TextStyle)
	r.capText.Move(fyne.NewPos(x0+w-4, capY-ts.Height-1))
	r.topText.Move(fyne.NewPos(x0-6, y0-2))
	r.zeroText.Move(fyne.NewPos(x0-6, base-ts.Height+2))
}

func (r *chartRenderer) MinSize() fyne.Size { return r.c.MinSize() }

func (r *chartRenderer) Refresh() {
	r.rebuild()
	r.Layout(r.c.Size())
	canvas.Refresh(r.c)
}

func (r *chartRenderer) Objects() []fyne.CanvasObject { return r.objects }

func (r *chartRenderer) Destroy() {}

// meter is a thin horizontal bar filled to a fraction, for the cap gauge
// and the by-model and by-script rows.
type meter struct {
	widget.BaseWidget
	frac   float64
	fill   color.Color
	height float32
}

func newMeter(height float32, fill color.Color) *meter {
	m := &meter{height: height, fill: fill}
	m.ExtendBaseWidget(m)
	return m
}

// set changes the fraction and colour.
func (m *meter) set(frac float64, fill color.Color) {
	m.frac, m.fill = min(1, max(0, frac)), fill
	m.Refresh()
}

// MinSize implements fyne.Widget.
func (m *meter) MinSize() fyne.Size { return fyne.NewSize(40, m.height) }

// CreateRenderer implements fyne.Widget.
func (m *meter) CreateRenderer() fyne.WidgetRenderer {
	track := canvas.NewRectangle(theme.Color(theme.ColorNameInputBackground))
	track.CornerRadius = m.height / 2
	bar := canvas.NewRectangle(m.fill)
	bar.CornerRadius = m.height / 2
	return &meterRenderer{m: m, track: track, bar: bar}
}

type meterRenderer struct {
	m          *meter
	track, bar *canvas.Rectangle
}

func (r *meterRenderer) Layout(size fyne.Size) {
	y := (size.Height - r.m.height) / 2
	r.track.Move(fyne.NewPos(0, y))
	r.track.Resize(fyne.NewSize(size.Width, r.m.height))
	r.bar.Move(fyne.NewPos(0, y))
	w := size.Width * float32(r.m.frac)
	if r.m.frac > 0 {
		w = max(w, r.m.height)
	}
	r.bar.Resize(fyne.NewSize(w, r.m.height))
}

func (r *meterRenderer) MinSize() fyne.Size { return r.m.MinSize() }

func (r *meterRenderer) Refresh() {
	r.track.FillColor = theme.Color(theme.ColorNameInputBackground)
	r.bar.FillColor = r.m.fill
	r.Layout(r.m.Size())
	r.track.Refresh()
	r.bar.Refresh()
}

func (r *meterRenderer) Objects() []fyne.CanvasObject { return []fyne.CanvasObject{r.track, r.bar} }

func (r *meterRenderer) Destroy() {}

// shareChart lists the largest shares of the day's spend, a row each: the
// name, the amount and percentage, and a bar as long as the share is
// against the largest.
type shareChart struct {
	widget.BaseWidget
	shares []viewmodel.Share
	empty  string
}

// maxShares is how many rows a share chart shows.
const maxShares = 4

// shareRow is the height of one row.
const shareRow = 30

func newShareChart(empty string) *shareChart {
	c := &shareChart{empty: empty}
	c.ExtendBaseWidget(c)
	return c
}

func (c *shareChart) set(shares []viewmodel.Share) {
	c.shares = shares
	c.Refresh()
}

// MinSize implements fyne.Widget.
func (c *shareChart) MinSize() fyne.Size { return fyne.NewSize(240, shareRow*maxShares) }

// CreateRenderer implements fyne.Widget.
func (c *shareChart) CreateRenderer() fyne.WidgetRenderer {
	r := &shareRenderer{c: c}
	r.rebuild()
	return r
}

type shareRenderer struct {
	c       *shareChart
	names   []*canvas.Text
	amounts []*canvas.Text
	tracks  []*canvas.Rectangle
	bars    []*canvas.Rectangle
	objects []fyne.CanvasObject
}

func (r *shareRenderer) rebuild() {
	fg := theme.Color(theme.ColorNameForeground)
	r.names, r.amounts, r.tracks, r.bars, r.objects = nil, nil, nil, nil, nil
	shares := r.c.shares
	if len(shares) > maxShares {
		shares = shares[:maxShares]
	}
	if len(shares) == 0 {
		t := canvas.NewText(r.c.empty, theme.Color(theme.ColorNamePlaceHolder))
		r.names = append(r.names, t)
		r.objects = append(r.objects, t)
		return
	}
	for _, s := range shares {
		name := canvas.NewText(s.Name, fg)
		amount := canvas.NewText(s.Amount+"  "+s.Percent, fg)
		amount.TextStyle.Monospace = true
		amount.Alignment = fyne.TextAlignTrailing
		track := canvas.NewRectangle(theme.Color(theme.ColorNameInputBackground))
		track.CornerRadius = 2
		bar := canvas.NewRectangle(barColor)
		bar.CornerRadius = 2
		r.names, r.amounts = append(r.names, name), append(r.amounts, amount)
		r.tracks, r.bars = append(r.tracks, track), append(r.bars, bar)
		r.objects = append(r.objects, track, bar, name, amount)
	}
}

func (r *shareRenderer) Layout(size fyne.Size) {
	if len(r.bars) == 0 {
		if len(r.names) > 0 {
			r.names[0].Move(fyne.NewPos(theme.Padding(), 2))
		}
		return
	}
	pad := theme.Padding()
	for i := range r.bars {
		y := float32(i) * shareRow
		r.names[i].Move(fyne.NewPos(pad, y))
		r.amounts[i].Move(fyne.NewPos(size.Width-pad, y))
		r.tracks[i].Move(fyne.NewPos(pad, y+21))
		r.tracks[i].Resize(fyne.NewSize(size.Width-2*pad, 4))
		r.bars[i].Move(fyne.NewPos(pad, y+21))
		r.bars[i].Resize(fyne.NewSize(max(4, (size.Width-2*pad)*float32(r.c.shares[i].Frac)), 4))
	}
}

func (r *shareRenderer) MinSize() fyne.Size { return r.c.MinSize() }

func (r *shareRenderer) Refresh() {
	r.rebuild()
	r.Layout(r.c.Size())
	canvas.Refresh(r.c)
}

func (r *shareRenderer) Objects() []fyne.CanvasObject { return r.objects }

func (r *shareRenderer) Destroy() {}
