// Package ledger is keycap's durable record of every metered request, the
// tokens it issued, its events and a little state, in one SQLite file (WAL).
// A request is written as a reservation before it is forwarded and settled
// when its response ends, so a crash never loses spend.
package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/keycap/keycap/watchdog/meter"
	"github.com/keycap/keycap/watchdog/money"

	_ "modernc.org/sqlite" // the SQLite driver, pure Go
)

// States of a request row.
const (
	Reserved  = "reserved"
	Settled   = "settled"
	Recovered = "recovered"
)

const schema = `
CREATE TABLE IF NOT EXISTS requests (
	id INTEGER PRIMARY KEY,
	started_at INTEGER NOT NULL,
	finished_at INTEGER,
	day TEXT NOT NULL,
	token_id TEXT NOT NULL,
	label TEXT NOT NULL,
	method TEXT NOT NULL DEFAULT '',
	path TEXT NOT NULL DEFAULT '',
	endpoint TEXT NOT NULL,
	model TEXT NOT NULL DEFAULT '',
	card TEXT NOT NULL DEFAULT '',
	stream INTEGER NOT NULL DEFAULT 0,
	estimate INTEGER NOT NULL,
	cost INTEGER,
	state TEXT NOT NULL,
	exact INTEGER NOT NULL DEFAULT 0,
	input_tokens INTEGER NOT NULL DEFAULT 0,
	cached_tokens INTEGER NOT NULL DEFAULT 0,
	output_tokens INTEGER NOT NULL DEFAULT 0,
	reasoning_tokens INTEGER NOT NULL DEFAULT 0,
	characters INTEGER NOT NULL DEFAULT 0,
	images INTEGER NOT NULL DEFAULT 0,
	seconds REAL NOT NULL DEFAULT 0,
	status INTEGER NOT NULL DEFAULT 0,
	upstream_request_id TEXT NOT NULL DEFAULT '',
	note TEXT NOT NULL DEFAULT '',
	fingerprint TEXT NOT NULL DEFAULT '',
	rehearsed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS requests_day ON requests(day);
CREATE INDEX IF NOT EXISTS requests_token ON requests(token_id);
CREATE INDEX IF NOT EXISTS requests_state ON requests(state) WHERE state = 'reserved';
CREATE TABLE IF NOT EXISTS tokens (
	id TEXT PRIMARY KEY,
	hash BLOB NOT NULL UNIQUE,
	label TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	budget INTEGER NOT NULL DEFAULT 0,
	revoked_at INTEGER NOT NULL DEFAULT 0,
	rehearse INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
	id INTEGER PRIMARY KEY,
	at INTEGER NOT NULL,
	day TEXT NOT NULL,
	kind TEXT NOT NULL,
	label TEXT NOT NULL DEFAULT '',
	message TEXT NOT NULL,
	amount INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_at ON events(at);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`

// DB is an open ledger. It is safe for concurrent use.
type DB struct {
	w, r *sql.DB
	path string

	// Reservations and settlements go through one writer goroutine that
	// commits whatever has queued up in one transaction (group commit):
	// one fsync-free WAL commit for many requests instead of two each.
	insert, update *sql.Stmt
	mu             sync.Mutex
	closed         bool
	queue          chan *op
	writerDone     chan struct{}
}

// op is a reservation or a settlement waiting for the writer.
type op struct {
	entry  *Entry
	settle []any
	id     int64
	err    error
	done   chan struct{} // closed once committed
}

// Open opens (creating if needed) the ledger at path.
func Open(path string) (*DB, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)&_txlock=immediate"
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	// One writer connection: SQLite has one writer anyway, and this keeps
	// writers queued in Go rather than spinning on SQLITE_BUSY.
	w.SetMaxOpenConns(1)
	if _, err := w.Exec(schema); err != nil {
		w.Close()
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn+"&mode=ro")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	db := &DB{w: w, r: r, path: path, queue: make(chan *op, 1024), writerDone: make(chan struct{})}
	if db.insert, err = w.Prepare(insertSQL); err == nil {
		db.update, err = w.Prepare(settleSQL)
	}
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	go db.writer()
	return db, nil
}

// writer commits queued operations, as many as have queued up, in one
// transaction each round.
func (db *DB) writer() {
	defer close(db.writerDone)
	batch := make([]*op, 0, 256)
	for first := range db.queue {
		batch = append(batch[:0], first)
	more:
		for len(batch) < cap(batch) {
			select {
			case o, ok := <-db.queue:
				if !ok {
					break more
				}
				batch = append(batch, o)
			default:
				break more
			}
		}
		db.commit(batch)
		for _, o := range batch {
			if o.done != nil {
				close(o.done)
			}
		}
	}
}

func (db *DB) commit(batch []*op) {
	tx, err := db.w.Begin()
	if err == nil {
		ins, upd := tx.Stmt(db.insert), tx.Stmt(db.update)
		for _, o := range batch {
			if e := o.entry; e != nil {
				var res sql.Result
				res, o.err = ins.Exec(e.Start.UnixMilli(), e.Day, e.TokenID, e.Label, e.Method, e.Path, e.Endpoint, e.Model, e.Card, e.Stream,
					int64(e.Estimate), Reserved, e.Exact,
					e.Units.Input, e.Units.Cached, e.Units.Output, e.Units.Reasoning, e.Units.Characters, e.Units.Images, e.Units.Seconds,
					e.Fingerprint, e.Rehearsed, e.Note)
				if o.err == nil {
					o.id, o.err = res.LastInsertId()
				}
			} else {
				_, o.err = upd.Exec(o.settle...)
			}
		}
		err = tx.Commit()
	}
	if err != nil {
		for _, o := range batch {
			o.err = err
		}
	}
}

func (db *DB) enqueue(o *op) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return errors.New("ledger closed")
	}
	db.queue <- o
	return nil
}

// Path returns the file name of the ledger.
func (db *DB) Path() string { return db.path }

// Close writes what is queued and closes the ledger.
func (db *DB) Close() error {
	db.mu.Lock()
	if !db.closed {
		db.closed = true
		close(db.queue)
	}
	db.mu.Unlock()
	<-db.writerDone
	return errors.Join(db.r.Close(), db.w.Close())
}

// Check runs SQLite's integrity check.
func (db *DB) Check(ctx context.Context) error {
	var res string
	if err := db.w.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return fmt.Errorf("check ledger: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("check ledger: %s", res)
	}
	return nil
}

// Entry is one request in the ledger.
type Entry struct {
	ID          int64       `json:"id"`
	Start       time.Time   `json:"started_at"`
	End         time.Time   `json:"finished_at,omitzero"`
	Day         string      `json:"day"`
	TokenID     string      `json:"token_id"`
	Label       string      `json:"label"`
	Method      string      `json:"method"`
	Path        string      `json:"path"`
	Endpoint    string      `json:"endpoint"`
	Model       string      `json:"model"`
	Card        string      `json:"price_card,omitempty"`
	Stream      bool        `json:"stream"`
	Estimate    money.USD   `json:"estimate_usd"`
	Cost        money.USD   `json:"cost_usd"`
	State       string      `json:"state"`
	Exact       bool        `json:"exact"`
	Units       meter.Units `json:"units"`
	Status      int         `json:"status"`
	RequestID   string      `json:"upstream_request_id,omitempty"`
	Note        string      `json:"note,omitempty"`
	Fingerprint string      `json:"fingerprint,omitempty"`
	Rehearsed   bool        `json:"rehearsed,omitempty"`
}

// Charged is what the entry counts against the budget: its cost once
// settled, its estimate while reserved.
func (e Entry) Charged() money.USD {
	if e.State == Reserved {
		return e.Estimate
	}
	return e.Cost
}

const insertSQL = `INSERT INTO requests
	(started_at, day, token_id, label, method, path, endpoint, model, card, stream, estimate, state, exact,
	 input_tokens, cached_tokens, output_tokens, reasoning_tokens, characters, images, seconds, fingerprint, rehearsed, note)
	VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`

const settleSQL = `UPDATE requests SET finished_at=?, cost=?, state=?, exact=?,
	input_tokens=?, cached_tokens=?, output_tokens=?, reasoning_tokens=?, characters=?, images=?, seconds=?,
	status=?, upstream_request_id=?, note=? WHERE id=?`

// Reserve writes a reservation and returns its id once it is committed.
func (db *DB) Reserve(ctx context.Context, e Entry) (int64, error) {
	o := &op{entry: &e, done: make(chan struct{})}
	if err := db.enqueue(o); err != nil {
		return 0, fmt.Errorf("write reservation: %w", err)
	}
	<-o.done
	if o.err != nil {
		return 0, fmt.Errorf("write reservation: %w", o.err)
	}
	return o.id, nil
}

// Settle records the outcome of a reserved request and returns once it is
// committed, so a read that follows sees it. It shares its transaction
// with whatever else is queued (group commit); should the process die
// first, the row stays reserved and the next start counts it at its
// estimate, never less.
func (db *DB) Settle(ctx context.Context, id int64, end time.Time, s meter.Settlement, status int, requestID string) error {
	o := &op{settle: []any{end.UnixMilli(), int64(s.Cost), Settled, s.Exact,
		s.Units.Input, s.Units.Cached, s.Units.Output, s.Units.Reasoning, s.Units.Characters, s.Units.Images, s.Units.Seconds,
		status, requestID, s.Note, id}, done: make(chan struct{})}
	if err := db.enqueue(o); err != nil {
		return fmt.Errorf("settle request %d: %w", id, err)
	}
	<-o.done
	if o.err != nil {
		return fmt.Errorf("settle request %d: %w", id, o.err)
	}
	return nil
}

// RecoverNote explains a reservation found unsettled at start-up.
const RecoverNote = "keycap stopped before this request finished; counted at its estimate"

// Recover settles, at their estimates, the reservations a previous run left
// open (it crashed or was killed mid-request), and returns how many there
// were and what they added up to.
func (db *DB) Recover(ctx context.Context, now time.Time) (int, money.USD, error) {
	var n int
	var total sql.NullInt64
	if err := db.w.QueryRowContext(ctx, `SELECT COUNT(*), SUM(estimate) FROM requests WHERE state = 'reserved'`).Scan(&n, &total); err != nil {
		return 0, 0, fmt.Errorf("recover reservations: %w", err)
	}
	if n == 0 {
		return 0, 0, nil
	}
	_, err := db.w.ExecContext(ctx, `UPDATE requests SET state='recovered', cost=estimate, exact=0, finished_at=?, note=? WHERE state='reserved'`,
		now.UnixMilli(), RecoverNote)
	if err != nil {
		return 0, 0, fmt.Errorf("recover reservations: %w", err)
	}
	return n, money.USD(total.Int64), nil
}

// Totals is what a set of requests was charged.
type Totals struct {
	Spent     money.USD            `json:"spent_usd"`
	Requests  int64                `json:"requests"`
	Estimated int64                `json:"estimated"`
	ByModel   map[string]money.USD `json:"by_model"`
	ByLabel   map[string]money.USD `json:"by_label"`
}

// DayTotals adds up the real requests of one local day, reservations at
// their estimate.
func (db *DB) DayTotals(ctx context.Context, day string) (Totals, error) {
	return db.dayTotals(ctx, day, false)
}

// RehearsedDayTotals adds up the rehearsed requests of one local day.
func (db *DB) RehearsedDayTotals(ctx context.Context, day string) (Totals, error) {
	return db.dayTotals(ctx, day, true)
}

func (db *DB) dayTotals(ctx context.Context, day string, rehearsed bool) (Totals, error) {
	t := Totals{ByModel: map[string]money.USD{}, ByLabel: map[string]money.USD{}}
	rows, err := db.r.QueryContext(ctx, `SELECT model, label, SUM(COALESCE(cost, estimate)), COUNT(*), SUM(exact = 0)
		FROM requests WHERE day = ? AND rehearsed = ? GROUP BY model, label`, day, rehearsed)
	if err != nil {
		return t, fmt.Errorf("read day totals: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var model, label string
		var spent, n, est int64
		if err := rows.Scan(&model, &label, &spent, &n, &est); err != nil {
			return t, fmt.Errorf("read day totals: %w", err)
		}
		t.Spent += money.USD(spent)
		t.Requests += n
		t.Estimated += est
		t.ByModel[model] += money.USD(spent)
		t.ByLabel[label] += money.USD(spent)
	}
	return t, rows.Err()
}

// TokenSpend returns what each of the given tokens has been charged.
func (db *DB) TokenSpend(ctx context.Context, ids []string) (map[string]money.USD, error) {
	out := map[string]money.USD{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	q := `SELECT token_id, SUM(COALESCE(cost, estimate)) FROM requests WHERE rehearsed = 0 AND token_id IN (?` +
		strings.Repeat(",?", len(ids)-1) + `) GROUP BY token_id`
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read token spend: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var v int64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, fmt.Errorf("read token spend: %w", err)
		}
		out[id] = money.USD(v)
	}
	return out, rows.Err()
}

const entryCols = `id, started_at, COALESCE(finished_at, 0), day, token_id, label, method, path, endpoint, model, card, stream,
	estimate, COALESCE(cost, 0), state, exact, input_tokens, cached_tokens, output_tokens, reasoning_tokens, characters, images, seconds,
	status, upstream_request_id, note, fingerprint, rehearsed`

func scanEntry(s interface{ Scan(...any) error }) (Entry, error) {
	var e Entry
	var start, end int64
	var est, cost int64
	err := s.Scan(&e.ID, &start, &end, &e.Day, &e.TokenID, &e.Label, &e.Method, &e.Path, &e.Endpoint, &e.Model, &e.Card, &e.Stream,
		&est, &cost, &e.State, &e.Exact, &e.Units.Input, &e.Units.Cached, &e.Units.Output, &e.Units.Reasoning,
		&e.Units.Characters, &e.Units.Images, &e.Units.Seconds, &e.Status, &e.RequestID, &e.Note, &e.Fingerprint, &e.Rehearsed)
	e.Start = time.UnixMilli(start)
	if end > 0 {
		e.End = time.UnixMilli(end)
	}
	e.Estimate, e.Cost = money.USD(est), money.USD(cost)
	return e, err
}

// Recent returns the latest requests, newest first.
func (db *DB) Recent(ctx context.Context, limit int) ([]Entry, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+entryCols+` FROM requests ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read recent requests: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("read recent requests: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Get returns one request.
func (db *DB) Get(ctx context.Context, id int64) (Entry, error) {
	e, err := scanEntry(db.r.QueryRowContext(ctx, `SELECT `+entryCols+` FROM requests WHERE id = ?`, id))
	if err != nil {
		return e, fmt.Errorf("read request %d: %w", id, err)
	}
	return e, nil
}

// Token is an issued token as stored: its hash, never the token itself.
type Token struct {
	ID        string    `json:"id"`
	Hash      []byte    `json:"-"`
	Label     string    `json:"label"`
	Created   time.Time `json:"created_at"`
	Expires   time.Time `json:"expires_at"`
	Budget    money.USD `json:"budget_micros,omitempty"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// Rehearse sends the token's requests to the built-in stand-in.
	Rehearse bool `json:"rehearse,omitempty"`
}

// PutToken stores a new token.
func (db *DB) PutToken(ctx context.Context, t Token) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO tokens (id, hash, label, created_at, expires_at, budget, rehearse) VALUES (?,?,?,?,?,?,?)`,
		t.ID, t.Hash, t.Label, t.Created.UnixMilli(), t.Expires.UnixMilli(), int64(t.Budget), t.Rehearse)
	if err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	return nil
}

// LiveTokens returns the tokens not revoked and not expired at now.
func (db *DB) LiveTokens(ctx context.Context, now time.Time) ([]Token, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, hash, label, created_at, expires_at, budget, rehearse FROM tokens
		WHERE revoked_at = 0 AND expires_at > ? ORDER BY created_at`, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		var c, e, b int64
		if err := rows.Scan(&t.ID, &t.Hash, &t.Label, &c, &e, &b, &t.Rehearse); err != nil {
			return nil, fmt.Errorf("read tokens: %w", err)
		}
		t.Created, t.Expires, t.Budget = time.UnixMilli(c), time.UnixMilli(e), money.USD(b)
		out = append(out, t)
	}
	return out, rows.Err()
}

// Revoke marks tokens revoked; with no ids it revokes every live token. It
// returns how many it revoked.
func (db *DB) Revoke(ctx context.Context, now time.Time, ids ...string) (int64, error) {
	var res sql.Result
	var err error
	if len(ids) == 0 {
		res, err = db.w.ExecContext(ctx, `UPDATE tokens SET revoked_at=? WHERE revoked_at = 0 AND expires_at > ?`, now.UnixMilli(), now.UnixMilli())
	} else {
		args := []any{now.UnixMilli()}
		for _, id := range ids {
			args = append(args, id)
		}
		res, err = db.w.ExecContext(ctx, `UPDATE tokens SET revoked_at=? WHERE revoked_at = 0 AND id IN (?`+strings.Repeat(",?", len(ids)-1)+`)`, args...)
	}
	if err != nil {
		return 0, fmt.Errorf("revoke tokens: %w", err)
	}
	return res.RowsAffected()
}

// Event is something keycap did or noticed: a cap reached, a pause, a
// recovered reservation.
type Event struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	Day     string    `json:"day"`
	Kind    string    `json:"kind"`
	Label   string    `json:"label,omitempty"`
	Message string    `json:"message"`
	Amount  money.USD `json:"amount_micros,omitempty"`
}

// AddEvent records an event.
func (db *DB) AddEvent(ctx context.Context, e Event) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO events (at, day, kind, label, message, amount) VALUES (?,?,?,?,?,?)`,
		e.At.UnixMilli(), e.Day, e.Kind, e.Label, e.Message, int64(e.Amount))
	if err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	return nil
}

// Events returns the latest events, newest first.
func (db *DB) Events(ctx context.Context, limit int) ([]Event, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, at, day, kind, label, message, amount FROM events ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at, amt int64
		if err := rows.Scan(&e.ID, &at, &e.Day, &e.Kind, &e.Label, &e.Message, &amt); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		e.At, e.Amount = time.UnixMilli(at), money.USD(amt)
		out = append(out, e)
	}
	return out, rows.Err()
}

// State returns a stored value, "" if unset.
func (db *DB) State(ctx context.Context, key string) (string, error) {
	var v string
	err := db.r.QueryRowContext(ctx, `SELECT value FROM state WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read state %s: %w", key, err)
	}
	return v, nil
}

// SetState stores a value.
func (db *DB) SetState(ctx context.Context, key, value string) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("write state %s: %w", key, err)
	}
	return nil
}

// Bucket is spend over one period.
type Bucket struct {
	Start time.Time `json:"start"`
	Spent money.USD `json:"spent_usd"`
}

// SpendByDay returns the real spend of each local day from..to inclusive
// (YYYY-MM-DD), only days that have spend.
func (db *DB) SpendByDay(ctx context.Context, from, to string) (map[string]money.USD, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT day, SUM(COALESCE(cost, estimate)) FROM requests
		WHERE day >= ? AND day <= ? AND rehearsed = 0 GROUP BY day`, from, to)
	if err != nil {
		return nil, fmt.Errorf("read spend by day: %w", err)
	}
	defer rows.Close()
	out := map[string]money.USD{}
	for rows.Next() {
		var d string
		var v int64
		if err := rows.Scan(&d, &v); err != nil {
			return nil, fmt.Errorf("read spend by day: %w", err)
		}
		out[d] = money.USD(v)
	}
	return out, rows.Err()
}

// DayEntries returns every request of one local day, oldest first.
func (db *DB) DayEntries(ctx context.Context, day string) ([]Entry, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+entryCols+` FROM requests WHERE day = ? ORDER BY id`, day)
	if err != nil {
		return nil, fmt.Errorf("read day: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("read day: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// TokenEntries returns every request made with one token, oldest first.
func (db *DB) TokenEntries(ctx context.Context, tokenID string) ([]Entry, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+entryCols+` FROM requests WHERE token_id = ? ORDER BY id`, tokenID)
	if err != nil {
		return nil, fmt.Errorf("read token requests: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("read token requests: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
