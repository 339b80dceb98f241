package viewmodel

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/keycap/keycap/watchdog/control"
	"github.com/keycap/keycap/watchdog/ledger"
	"github.com/keycap/keycap/watchdog/money"
)

// Series is a bar chart scaled so that the cap line fits: every height is a
// fraction of Top, so a chart widget only multiplies.
type Series struct {
	Title string
	Bars  []Bar
	// Line is the running total after each bar, as heights (nil: none).
	Line []float64
	// CapFrac is the cap line's height, and CapLabel its label.
	CapFrac  float64
	CapLabel string
	// Top is the amount at the top of the scale, e.g. "$6.00".
	Top string
	// Summary is one line under the chart.
	Summary string
}

// Bar is one period of a Series.
type Bar struct {
	// Label is the tick under the bar; "" for bars without one.
	Label string
	// Tip names the period and its spend, e.g. "14:00: $0.80".
	Tip   string
	Value money.USD
	// Frac is the bar's height, 0 to 1.
	Frac float64
	// Current marks this hour or today.
	Current bool
	// Over marks a bar above the cap.
	Over bool
}

// Days is how many days the daily chart shows, today included.
const Days = 30

// niceTop returns a round amount at or above v with a little headroom, for
// the top of a chart's scale: 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a
// power of ten.
func niceTop(v money.USD) money.USD {
	if v <= 0 {
		return money.Dollar
	}
	want := float64(v) * 1.08
	p := math.Pow(10, math.Floor(math.Log10(want)))
	for _, m := range []float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*p >= want {
			return money.USD(math.Ceil(m * p))
		}
	}
	return money.USD(math.Ceil(10 * p))
}

func frac(v, top money.USD) float64 {
	if top <= 0 {
		return 0
	}
	return min(1, float64(v)/float64(top))
}

// fillHours draws today by hour: a bar per hour and the running total
// climbing towards the cap line.
func (d *Dashboard) fillHours(ctx context.Context, db *ledger.DB, st control.Status, loc *time.Location, now time.Time) error {
	day, err := time.ParseInLocation(time.DateOnly, st.Day, loc)
	if err != nil {
		return fmt.Errorf("today is %q: %w", st.Day, err)
	}
	next := time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, loc)
	n := int(next.Sub(day) / time.Hour) // 23 or 25 on a daylight-saving day
	spend, err := db.SpendBuckets(ctx, day, time.Hour, n)
	s := &d.Hours
	s.Title = "Today by hour"
	if err != nil {
		return err
	}
	var total, busiest money.USD
	busy := -1
	for i, v := range spend {
		total += v
		if v > busiest {
			busiest, busy = v, i
		}
	}
	top := niceTop(max(st.Cap, total, st.Spent+st.Reserved))
	s.Top, s.CapFrac, s.CapLabel = top.String(), frac(st.Cap, top), "cap "+st.Cap.String()
	var run money.USD
	for i, v := range spend {
		start := day.Add(time.Duration(i) * time.Hour)
		h := start.Hour()
		b := Bar{Value: v, Frac: frac(v, top), Tip: fmt.Sprintf("%02d:00: %s", h, v)}
		if h%3 == 0 {
			b.Label = fmt.Sprintf("%02d", h)
		}
		b.Current = !now.Before(start) && now.Before(start.Add(time.Hour))
		run += v
		b.Over = run > st.Cap
		s.Bars = append(s.Bars, b)
		if !start.After(now) {
			s.Line = append(s.Line, frac(run, top))
		}
	}
	if busy < 0 {
		s.Summary = "Nothing spent today yet."
		return nil
	}
	s.Summary = fmt.Sprintf("%s so far today; busiest hour %02d:00 (%s)", total, day.Add(time.Duration(busy)*time.Hour).Hour(), busiest)
	return nil
}

// fillDays draws the last Days days, a bar each, under the cap line.
func (d *Dashboard) fillDays(ctx context.Context, db *ledger.DB, st control.Status, loc *time.Location) error {
	today, err := time.ParseInLocation(time.DateOnly, st.Day, loc)
	if err != nil {
		return fmt.Errorf("today is %q: %w", st.Day, err)
	}
	first := today.AddDate(0, 0, -(Days - 1))
	byDay, err := db.SpendByDay(ctx, first.Format(time.DateOnly), st.Day)
	s := &d.Days
	s.Title = fmt.Sprintf("Last %d days", Days)
	if err != nil {
		return err
	}
	var total, most money.USD
	for _, v := range byDay {
		total += v
		most = max(most, v)
	}
	top := niceTop(max(st.Cap, most))
	s.Top, s.CapFrac, s.CapLabel = top.String(), frac(st.Cap, top), "cap "+st.Cap.String()
	over := 0
	for i := range Days {
		t := first.AddDate(0, 0, i)
		v := byDay[t.Format(time.DateOnly)]
		b := Bar{Value: v, Frac: frac(v, top), Tip: fmt.Sprintf("%s: %s", t.Format("Mon Jan 2"), v), Current: i == Days-1, Over: v > st.Cap}
		if (Days-1-i)%7 == 0 {
			b.Label = t.Format("Jan 2")
		}
		if b.Over {
			over++
		}
		s.Bars = append(s.Bars, b)
	}
	s.Summary = fmt.Sprintf("%s in %d days, %s a day on average", total, Days, total/Days)
	if over > 0 {
		s.Summary += fmt.Sprintf("; %s above today's cap", plural(int64(over), "day"))
	}
	return nil
}
