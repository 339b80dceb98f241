package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/keycap/keycap/watchdog/money"
)

// This file holds the read-only aggregates the tray and the dashboard draw:
// they add up in SQL, so a day of a runaway loop (hundreds of thousands of
// requests) still reads as a handful of rows. The requests table is indexed
// by day, not by time, so each query also bounds the day: a request's local
// day is within a day of its UTC date, whatever the time zone.

// dayBounds returns days that surely include every local day of [from, to).
func dayBounds(from, to time.Time) (string, string) {
	return from.UTC().Add(-24 * time.Hour).Format(time.DateOnly), to.UTC().Add(24 * time.Hour).Format(time.DateOnly)
}

// SpendBuckets returns the real spend of n consecutive periods of length
// step starting at from: element i covers [from+i·step, from+(i+1)·step).
// Requests count from when they started, reservations at their estimate.
func (db *DB) SpendBuckets(ctx context.Context, from time.Time, step time.Duration, n int) ([]money.USD, error) {
	if n <= 0 || step < time.Millisecond {
		return nil, fmt.Errorf("read spend buckets: need n > 0 and a step of at least 1ms, not n=%d step=%v", n, step)
	}
	start, ms := from.UnixMilli(), step.Milliseconds()
	end := start + ms*int64(n)
	d0, d1 := dayBounds(from, time.UnixMilli(end))
	rows, err := db.r.QueryContext(ctx, `SELECT (started_at - ?) / ?, SUM(COALESCE(cost, estimate)) FROM requests
		WHERE day >= ? AND day <= ? AND started_at >= ? AND started_at < ? AND rehearsed = 0 GROUP BY 1`,
		start, ms, d0, d1, start, end)
	if err != nil {
		return nil, fmt.Errorf("read spend buckets: %w", err)
	}
	defer rows.Close()
	out := make([]money.USD, n)
	for rows.Next() {
		var i, v int64
		if err := rows.Scan(&i, &v); err != nil {
			return nil, fmt.Errorf("read spend buckets: %w", err)
		}
		if i >= 0 && i < int64(n) {
			out[i] = money.USD(v)
		}
	}
	return out, rows.Err()
}

// Spender is what one script spent on one model and endpoint.
type Spender struct {
	Label    string    `json:"label"`
	Model    string    `json:"model"`
	Endpoint string    `json:"endpoint"`
	Spent    money.USD `json:"spent_usd"`
	Requests int64     `json:"requests"`
	// Reserved is how much of Spent is still in flight (at its estimate).
	Reserved money.USD `json:"reserved_usd"`
}

// SpendSince returns the real spend of requests started at or after since
// (and no later than a day ahead of it), by script, model and endpoint, the
// largest first (at most limit rows).
func (db *DB) SpendSince(ctx context.Context, since time.Time, limit int) ([]Spender, error) {
	d0, d1 := dayBounds(since, since.Add(24*time.Hour))
	rows, err := db.r.QueryContext(ctx, `SELECT label, model, endpoint, SUM(COALESCE(cost, estimate)) AS spent, COUNT(*),
		SUM(CASE WHEN state = 'reserved' THEN estimate ELSE 0 END)
		FROM requests WHERE day >= ? AND day <= ? AND started_at >= ? AND rehearsed = 0
		GROUP BY label, model, endpoint ORDER BY spent DESC, label, model, endpoint LIMIT ?`, d0, d1, since.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("read recent spend: %w", err)
	}
	defer rows.Close()
	var out []Spender
	for rows.Next() {
		var s Spender
		var spent, reserved int64
		if err := rows.Scan(&s.Label, &s.Model, &s.Endpoint, &spent, &s.Requests, &reserved); err != nil {
			return nil, fmt.Errorf("read recent spend: %w", err)
		}
		s.Spent, s.Reserved = money.USD(spent), money.USD(reserved)
		out = append(out, s)
	}
	return out, rows.Err()
}
