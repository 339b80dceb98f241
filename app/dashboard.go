package app

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/data/binding"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keycap/keycap/app/viewmodel"
)

// dashboard is the dashboard window: at the top what today costs and what
// is costing money right now, then the charts, where the money went, and
// the recent requests and events.
type dashboard struct {
	u      *ui
	window fyne.Window

	// Live text, bound so the widgets hold no logic.
	headline, spent, ofCap, details, now, pace, capNote, keyNote, notice binding.String

	stateIcon    *canvas.Image
	spentText    *canvas.Text
	headlineText *canvas.Text
	gauge        *meter
	pauseButton  *widget.Button
	capBanner    *fyne.Container
	problem      *widget.Label

	hours, days    *barChart
	hoursSum       binding.String
	daysSum        binding.String
	byModel, byLbl *shareChart
	recent         *widget.Table
	recentRows     []viewmodel.Row
	events         *widget.List
	eventRows      []viewmodel.EventRow
	state          viewmodel.State
	stateKnown     bool
	noticeLabel    *widget.Label
	nowBar         *canvas.Rectangle
	spentRow       *fyne.Container
	header         *fyne.Container
	paceLabel      *widget.Label
}

// recentColumns are the recent-requests table's columns and widths.
var recentColumns = []struct {
	title string
	width float32
}{
	{"Time", 92}, {"Script", 150}, {"Endpoint", 160}, {"Model", 170}, {"Cost", 80}, {"How", 150},
}

func newDashboard(u *ui) *dashboard {
	d := &dashboard{u: u}
	for _, b := range []*binding.String{&d.headline, &d.spent, &d.ofCap, &d.details, &d.now, &d.pace, &d.capNote, &d.keyNote, &d.notice, &d.hoursSum, &d.daysSum} {
		*b = binding.NewString()
	}
	w := u.app.NewWindow("keycap — today's OpenAI spend")
	w.SetIcon(AppIcon)
	w.SetCloseIntercept(u.closeWindow(w))
	d.window = w
	w.SetContent(d.content())
	w.Resize(fyne.NewSize(1100, 840))
	return d
}

func (d *dashboard) content() fyne.CanvasObject {
	u := d.u
	d.stateIcon = canvas.NewImageFromResource(iconFor(viewmodel.UnderBudget))
	d.stateIcon.FillMode = canvas.ImageFillContain
	d.stateIcon.SetMinSize(fyne.NewSize(56, 56))

	d.spentText = canvas.NewText("", theme.Color(theme.ColorNameForeground))
	d.spentText.TextSize = 40
	d.spentText.TextStyle.Bold = true
	d.headlineText = canvas.NewText("", stateColor(viewmodel.UnderBudget))
	d.headlineText.TextSize = 18
	d.headlineText.TextStyle.Bold = true
	ofCap := widget.NewLabelWithData(d.ofCap)
	ofCap.SizeName = theme.SizeNameSubHeadingText

	d.gauge = newMeter(12, stateColor(viewmodel.UnderBudget))
	details := widget.NewLabelWithData(d.details)

	d.pauseButton = widget.NewButtonWithIcon(viewmodel.PauseAll, theme.MediaPauseIcon(), u.togglePause)
	d.pauseButton.Importance = widget.DangerImportance
	token := widget.NewButtonWithIcon("New terminal token…", theme.ContentCopyIcon(), u.newTerminalToken)
	settings := widget.NewButtonWithIcon("Settings…", theme.SettingsIcon(), u.openSettings)
	buttons := container.NewVBox(d.pauseButton, token, settings)

	d.spentRow = container.NewHBox(d.spentText, container.NewVBox(layout.NewSpacer(), ofCap))
	figures := container.NewVBox(d.spentRow, d.headlineText)
	top := container.NewBorder(nil, nil, container.NewCenter(d.stateIcon), buttons,
		container.NewVBox(figures, d.gauge, details))

	// What is costing money right now, in a band of the state's colour.
	now := widget.NewLabelWithData(d.now)
	now.TextStyle.Bold = true
	now.SizeName = theme.SizeNameSubHeadingText
	now.Truncation = fyne.TextTruncateEllipsis
	pace := widget.NewLabelWithData(d.pace)
	pace.Importance = widget.WarningImportance
	pace.TextStyle.Bold = true
	pace.Truncation = fyne.TextTruncateEllipsis
	d.nowBar = canvas.NewRectangle(stateColor(viewmodel.UnderBudget))
	d.nowBar.SetMinSize(fyne.NewSize(5, 0))
	d.nowBar.CornerRadius = 2
	nowBox := container.NewBorder(nil, nil, d.nowBar, nil, container.NewVBox(now, pace))
	d.paceLabel = pace

	capNote := widget.NewLabelWithData(d.capNote)
	capNote.Wrapping = fyne.TextWrapWord
	capNote.Importance = widget.HighImportance
	change := widget.NewButton("Change cap…", u.openSettings)
	change.Importance = widget.HighImportance
	d.capBanner = container.NewBorder(nil, nil, widget.NewIcon(theme.InfoIcon()), change, capNote)
	d.capBanner.Hide()

	d.noticeLabel = widget.NewLabelWithData(d.notice)
	d.noticeLabel.Importance = widget.DangerImportance
	d.noticeLabel.Wrapping = fyne.TextWrapWord
	d.noticeLabel.Hide()
	d.problem = widget.NewLabel("")
	d.problem.Importance = widget.DangerImportance
	d.problem.Wrapping = fyne.TextWrapWord
	d.problem.Hide()

	d.hours, d.days = newBarChart(), newBarChart()
	charts := container.NewGridWithColumns(2,
		d.chartCard(d.hours, d.hoursSum, "Today by hour"),
		d.chartCard(d.days, d.daysSum, "Last 30 days"),
	)

	d.byModel, d.byLbl = newShareChart("Nothing spent today."), newShareChart("Nothing spent today.")
	shares := container.NewGridWithColumns(2,
		titled("Today by model", d.byModel),
		titled("Today by script", d.byLbl),
	)

	d.recent = widget.NewTableWithHeaders(
		func() (int, int) { return len(d.recentRows), len(recentColumns) },
		func() fyne.CanvasObject {
			l := widget.NewLabel("")
			l.Truncation = fyne.TextTruncateEllipsis
			return l
		},
		func(id widget.TableCellID, o fyne.CanvasObject) { d.updateCell(id, o.(*widget.Label)) },
	)
	d.recent.ShowHeaderColumn = false
	d.recent.CreateHeader = func() fyne.CanvasObject {
		return widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	}
	d.recent.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		if id.Col >= 0 && id.Col < len(recentColumns) {
			o.(*widget.Label).SetText(recentColumns[id.Col].title)
		}
	}
	for i, c := range recentColumns {
		d.recent.SetColumnWidth(i, c.width)
	}
	d.events = widget.NewList(
		func() int { return len(d.eventRows) },
		func() fyne.CanvasObject {
			at := widget.NewLabel("00:00:00")
			kind := widget.NewLabelWithStyle("cap reached", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
			msg := widget.NewLabel("")
			msg.Truncation = fyne.TextTruncateEllipsis
			return container.NewBorder(nil, nil, container.NewHBox(at, kind), nil, msg)
		},
		func(i widget.ListItemID, o fyne.CanvasObject) { d.updateEvent(i, o.(*fyne.Container)) },
	)
	tabs := container.NewAppTabs(
		container.NewTabItem("Recent requests", d.recent),
		container.NewTabItem("Events", d.events),
	)
	keyNote := widget.NewLabelWithData(d.keyNote)
	keyNote.Importance = widget.LowImportance

	d.header = container.NewVBox(top, d.capBanner, d.noticeLabel, nowBox, d.problem, charts, shares)
	header := d.header
	return container.NewBorder(header, keyNote, nil, nil, tabs)
}

// chartCard puts a chart under its title, with its summary on the right;
// while the pointer is over a bar, the bar's period and spend replace it.
func (d *dashboard) chartCard(c *barChart, summary binding.String, title string) fyne.CanvasObject {
	sum := widget.NewLabelWithData(summary)
	sum.Alignment = fyne.TextAlignTrailing
	sum.Truncation = fyne.TextTruncateEllipsis
	c.onHover = func(tip string) {
		if tip == "" {
			sum.Bind(summary)
			sum.TextStyle.Bold = false
		} else {
			sum.Unbind()
			sum.TextStyle.Bold = true
			sum.SetText(tip)
		}
		sum.Refresh()
	}
	head := container.NewBorder(nil, nil, widget.NewLabelWithStyle(title, fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), nil, sum)
	return container.NewBorder(head, nil, nil, nil, c)
}

func titled(title string, body fyne.CanvasObject) fyne.CanvasObject {
	return container.NewBorder(widget.NewLabelWithStyle(title, fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), nil, nil, nil, body)
}

func (d *dashboard) updateCell(id widget.TableCellID, l *widget.Label) {
	if id.Row < 0 || id.Row >= len(d.recentRows) {
		l.SetText("")
		return
	}
	r := d.recentRows[id.Row]
	text := ""
	switch id.Col {
	case 0:
		text = r.Time
	case 1:
		text = r.Script
	case 2:
		text = r.Endpoint
	case 3:
		text = r.Model
	case 4:
		text = r.Cost
	case 5:
		text = r.How
	}
	l.Importance = widget.MediumImportance
	if r.Refused {
		l.Importance = widget.DangerImportance
	}
	l.SetText(text)
}

func (d *dashboard) updateEvent(i widget.ListItemID, c *fyne.Container) {
	if i < 0 || i >= len(d.eventRows) {
		return
	}
	e := d.eventRows[i]
	left := c.Objects[1].(*fyne.Container)
	at, kind := left.Objects[0].(*widget.Label), left.Objects[1].(*widget.Label)
	msg := c.Objects[0].(*widget.Label)
	at.SetText(e.Time)
	kind.Importance = widget.MediumImportance
	if e.Alarm {
		kind.Importance = widget.DangerImportance
	}
	kind.SetText(e.Kind)
	msg.SetText(e.Message)
}

// show renders a view.
func (d *dashboard) show(v viewmodel.View) {
	db := v.Dashboard
	// The title carries the figure too, for the taskbar and window lists.
	if title := "keycap — " + strings.TrimPrefix(v.Tray.Tooltip, "keycap: "); d.window.Title() != title {
		d.window.SetTitle(title)
	}
	d.spent.Set(db.Spent)
	d.ofCap.Set(db.OfCap)
	d.headline.Set(db.Headline)
	d.details.Set(db.Details)
	d.now.Set(db.Now)
	d.pace.Set(db.Pace)
	d.capNote.Set(db.CapNote)
	d.keyNote.Set(db.KeyNote)
	d.hoursSum.Set(db.Hours.Summary)
	d.daysSum.Set(db.Days.Summary)

	if d.spentText.Text != db.Spent {
		d.spentText.Text = db.Spent
		d.spentText.Refresh()
		d.spentRow.Refresh() // the amount's width changed
	}
	if d.headlineText.Text != db.Headline || !d.stateKnown || d.state != db.State {
		d.headlineText.Text = db.Headline
		d.headlineText.Color = stateColor(db.State)
		d.headlineText.Refresh()
	}
	if !d.stateKnown || d.state != db.State {
		d.stateIcon.Resource = iconFor(db.State)
		d.stateIcon.Refresh()
		d.state, d.stateKnown = db.State, true
	}
	d.gauge.set(db.Used, stateColor(db.State))
	d.nowBar.FillColor = stateColor(db.State)
	d.nowBar.Refresh()
	showIf(d.paceLabel, db.Pace != "")
	if v.Status.Paused {
		d.pauseButton.SetText(viewmodel.Resume)
		d.pauseButton.SetIcon(theme.MediaPlayIcon())
		d.pauseButton.Importance = widget.HighImportance
	} else {
		d.pauseButton.SetText(viewmodel.PauseAll)
		d.pauseButton.SetIcon(theme.MediaPauseIcon())
		d.pauseButton.Importance = widget.DangerImportance
	}
	d.pauseButton.Refresh()
	showIf(d.capBanner, db.CapNote != "")
	d.problem.SetText(db.Problem)
	showIf(d.problem, db.Problem != "")

	d.hours.set(db.Hours)
	d.days.set(db.Days)
	d.byModel.set(db.ByModel)
	d.byLbl.set(db.ByLabel)
	d.recentRows = db.Recent
	d.recent.Refresh()
	d.eventRows = db.Events
	d.events.Refresh()
	d.header.Refresh() // banners may have come or gone
}

// flash shows a sentence (a refused command) at the top of the window.
func (d *dashboard) flash(msg string) {
	d.notice.Set(msg)
	showIf(d.noticeLabel, msg != "")
	d.header.Refresh()
}

func showIf(o fyne.CanvasObject, visible bool) {
	if visible && !o.Visible() {
		o.Show()
	} else if !visible && o.Visible() {
		o.Hide()
	}
}
