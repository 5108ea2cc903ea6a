package task

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/writhq/writ/internal/ledger"
)

// dialect is the SQL flavour of the database holding the tables.
type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

func dialectOf(store any) dialect {
	if d, ok := store.(interface{ Dialect() string }); ok && d.Dialect() == "postgres" {
		return dialectPostgres
	}
	return dialectSQLite
}

// schema returns projectionSchema in d's flavour.
func (d dialect) schema() string {
	if d == dialectPostgres {
		return strings.ReplaceAll(projectionSchema, " WITHOUT ROWID", "")
	}
	return projectionSchema
}

// upsert returns a statement that inserts a row of cols into table, or
// replaces the row with the same key (the first column).
func (d dialect) upsert(table string, cols []string) string {
	ph := d.placeholders(len(cols))
	if d == dialectSQLite {
		return "INSERT OR REPLACE INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (" + ph + ")"
	}
	set := make([]string, 0, len(cols)-1)
	for _, c := range cols[1:] {
		set = append(set, c+" = excluded."+c)
	}
	return "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (" + ph +
		") ON CONFLICT (" + cols[0] + ") DO UPDATE SET " + strings.Join(set, ", ")
}

// placeholders returns n parameter placeholders in d's flavour, joined
// by commas.
func (d dialect) placeholders(n int) string {
	ph := make([]string, n)
	for i := range ph {
		ph[i] = "?"
		if d == dialectPostgres {
			ph[i] = "$" + strconv.Itoa(i+1)
		}
	}
	return strings.Join(ph, ", ")
}

// hasTable reports whether table exists.
func (d dialect) hasTable(ctx context.Context, db sqlQuerier, table string) (bool, error) {
	var n int
	var err error
	if d == dialectPostgres {
		err = db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1`, table).Scan(&n)
	} else {
		err = db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n)
	}
	return n > 0, err
}

// The projection tables live in the store's SQLite file beside the ledger.
// They are for queries from outside writ (and a future console); writ itself
// reads State. Each write-side change rewrites the rows of the tasks it
// touched and advances projected_through in one transaction.
const projectionSchema = `
CREATE TABLE IF NOT EXISTS task_projection (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tasks (task_id TEXT PRIMARY KEY, state TEXT NOT NULL, requester TEXT NOT NULL,
  agent TEXT NOT NULL, scope_hash TEXT NOT NULL, parent TEXT NOT NULL, decision_id TEXT NOT NULL,
  policy_version TEXT NOT NULL, approvals_required INTEGER NOT NULL, expires_at TEXT NOT NULL,
  ended_at TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS approvals (approval_id TEXT PRIMARY KEY, task_id TEXT NOT NULL, kind TEXT NOT NULL,
  status TEXT NOT NULL, required INTEGER NOT NULL, granted INTEGER NOT NULL, scope_hash TEXT NOT NULL,
  tool TEXT NOT NULL, args_digest TEXT NOT NULL, policy_version TEXT NOT NULL, expires_at TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS credentials (jti TEXT PRIMARY KEY, task_id TEXT NOT NULL, agent TEXT NOT NULL,
  expires_at TEXT NOT NULL, revoked INTEGER NOT NULL, revoked_at TEXT NOT NULL) WITHOUT ROWID;
`

// table describes one projection table: its columns (key first) and how
// its rows are derived from State — all of them, or those of the tasks in
// only (rows), and one by its key, nil when State implies none (row) —
// and how many State implies (count).
type table struct {
	name  string
	cols  []string
	rows  func(st *State, only map[string]bool) map[string][]string
	row   func(st *State, key string) []string
	count func(st *State) int
}

var tables = []table{
	{"tasks", []string{"task_id", "state", "requester", "agent", "scope_hash", "parent", "decision_id",
		"policy_version", "approvals_required", "expires_at", "ended_at"}, taskRows,
		func(st *State, id string) []string { return rowOf(st.tasks, id, taskRow) },
		func(st *State) int { return len(st.tasks) }},
	{"approvals", []string{"approval_id", "task_id", "kind", "status", "required", "granted", "scope_hash",
		"tool", "args_digest", "policy_version", "expires_at"}, approvalRows,
		func(st *State, id string) []string { return rowOf(st.approvals, id, approvalRow) },
		func(st *State) int { return len(st.approvals) }},
	{"credentials", []string{"jti", "task_id", "agent", "expires_at", "revoked", "revoked_at"}, credentialRows,
		func(st *State, jti string) []string { return rowOf(st.creds, jti, credentialRow) },
		func(st *State) int { return len(st.creds) }},
}

// rowOf returns the row of m's value at key, nil when there is none.
func rowOf[T any](m map[string]*T, key string, row func(string, *T) []string) []string {
	if v := m[key]; v != nil {
		return row(key, v)
	}
	return nil
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func taskRows(st *State, only map[string]bool) map[string][]string {
	out := map[string][]string{}
	for id, t := range st.tasks {
		if only == nil || only[id] {
			out[id] = taskRow(id, t)
		}
	}
	return out
}

func taskRow(id string, t *Task) []string {
	return []string{id, string(t.State), t.Requester, t.Agent, t.ScopeHash, t.Parent, t.DecisionID,
		t.PolicyVersion, strconv.Itoa(t.ApprovalsRequired), ts(t.ExpiresAt), ts(t.EndedAt)}
}

func approvalRows(st *State, only map[string]bool) map[string][]string {
	out := map[string][]string{}
	for id, a := range st.approvals {
		if only == nil || only[a.TaskID] {
			out[id] = approvalRow(id, a)
		}
	}
	return out
}

func approvalRow(id string, a *Approval) []string {
	return []string{id, a.TaskID, a.Kind, a.Status, strconv.Itoa(a.Required), strconv.Itoa(a.Granted()),
		a.ScopeHash, a.Tool, argsColumn(a), a.PolicyVersion, ts(a.ExpiresAt)}
}

// argsColumn is what the approvals table's args_digest column holds: a
// step-up's args_mac, or the args_digest of one recorded before args_mac
// (the column keeps its name so existing tables stay valid).
func argsColumn(a *Approval) string {
	if a.ArgsMAC != "" {
		return a.ArgsMAC
	}
	return a.LegacyDigest
}

func credentialRows(st *State, only map[string]bool) map[string][]string {
	out := map[string][]string{}
	for jti, c := range st.creds {
		if only == nil || only[c.TaskID] {
			out[jti] = credentialRow(jti, c)
		}
	}
	return out
}

func credentialRow(jti string, c *Credential) []string {
	rev := "0"
	if c.Revoked {
		rev = "1"
	}
	return []string{jti, c.TaskID, c.Agent, ts(c.ExpiresAt), rev, ts(c.RevokedAt)}
}

type projection struct {
	db      *sql.DB
	d       dialect
	through int64 // -1 when nothing is projected
}

func openProjection(ctx context.Context, db *sql.DB, d dialect) (*projection, error) {
	if d == dialectPostgres {
		// Replicas starting at once must not race to create the tables.
		if err := createLocked(ctx, db, d.schema()); err != nil {
			return nil, fmt.Errorf("creating projection tables: %w", err)
		}
	} else if _, err := db.ExecContext(ctx, d.schema()); err != nil {
		return nil, fmt.Errorf("creating projection tables: %w", err)
	}
	through, err := readThrough(ctx, db)
	if err != nil {
		return nil, err
	}
	return &projection{db: db, d: d, through: through}, nil
}

// createLocked runs schema in one transaction holding an advisory lock.
func createLocked(ctx context.Context, db *sql.DB, schema string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '/writ/projection-schema', 0))`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return err
	}
	return tx.Commit()
}

// sqlQuerier is a *sql.DB or a *sql.Tx.
type sqlQuerier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func readThrough(ctx context.Context, db sqlQuerier) (int64, error) {
	var v string
	err := db.QueryRowContext(ctx, `SELECT value FROM task_projection WHERE key = 'projected_through'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading projected_through: %w", err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < -1 {
		return 0, fmt.Errorf("projected_through is %q, not an index", v)
	}
	return n, nil
}

// write replaces the rows of the tasks in only (all rows when only is nil)
// and advances projected_through to through, in one transaction.
func (p *projection) write(ctx context.Context, st *State, only map[string]bool, through int64) error {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, tb := range tables {
		if only == nil {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+tb.name); err != nil {
				return err
			}
		}
		q := p.d.upsert(tb.name, tb.cols)
		for _, row := range tb.rows(st, only) {
			args := make([]any, len(row))
			for i, v := range row {
				args[i] = v
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
	}
	through = max(through, p.through)
	if _, err := tx.ExecContext(ctx, p.d.upsert("task_projection", []string{"key", "value"}), "projected_through",
		strconv.FormatInt(through, 10)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	p.through = through
	return nil
}

// writeAll rewrites every row from st.
func (p *projection) writeAll(ctx context.Context, st *State, through int64) error {
	return p.write(ctx, st, nil, through)
}

// compare returns one line per row that differs from what st implies.
func (p *projection) compare(ctx context.Context, st *State) ([]string, error) {
	return compareTables(ctx, p.db, st)
}

// compareTables reads each table once, comparing each row with the one st
// implies for its key as it goes; only when rows are missing does it read
// the keys again to name them.
func compareTables(ctx context.Context, db sqlQuerier, st *State) ([]string, error) {
	var diffs []string
	for _, tb := range tables {
		found, err := compareRows(ctx, db, st, tb, &diffs)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", tb.name, err)
		}
		if found == tb.count(st) {
			continue
		}
		missing, err := missingRows(ctx, db, st, tb)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", tb.name, err)
		}
		diffs = append(diffs, missing...)
	}
	slices.Sort(diffs)
	return diffs, nil
}

// compareRows appends to diffs how tb's rows differ from st's, and returns
// how many of them st implies.
func compareRows(ctx context.Context, db sqlQuerier, st *State, tb table, diffs *[]string) (int, error) {
	rows, err := db.QueryContext(ctx, "SELECT "+castCols(tb.cols)+" FROM "+tb.name)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	vals := make([]sql.RawBytes, len(tb.cols))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	found := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, err
		}
		key := string(vals[0])
		w := tb.row(st, key)
		if w == nil {
			*diffs = append(*diffs, fmt.Sprintf("%s row %s is not implied by any ledger event", tb.name, key))
			continue
		}
		found++
		for i := range w {
			if string(vals[i]) != w[i] {
				*diffs = append(*diffs, fmt.Sprintf("%s row %s: %s is %q but the ledger implies %q", tb.name, key, tb.cols[i], vals[i], w[i]))
			}
		}
	}
	return found, rows.Err()
}

// missingRows names the rows st implies that tb lacks.
func missingRows(ctx context.Context, db sqlQuerier, st *State, tb table) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SELECT "+castCols(tb.cols[:1])+" FROM "+tb.name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		have[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []string
	for key := range tb.rows(st, nil) {
		if !have[key] {
			out = append(out, fmt.Sprintf("%s row %s is missing", tb.name, key))
		}
	}
	return out, nil
}

func castCols(cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = "CAST(" + c + " AS TEXT)"
	}
	return strings.Join(out, ", ")
}

// ProjectionMismatchError reports projection rows that disagree with the
// ledger: edited, inserted or deleted behind writ's back.
type ProjectionMismatchError struct {
	Diffs []string
}

func (e *ProjectionMismatchError) Error() string {
	const show = 5
	msg := fmt.Sprintf("task projection tables disagree with the ledger in %d place(s): %s", len(e.Diffs),
		strings.Join(e.Diffs[:min(show, len(e.Diffs))], "; "))
	if len(e.Diffs) > show {
		msg += "; …"
	}
	return msg + " (start with --repair-projections to rewrite them from the ledger once the cause is understood)"
}

// CheckProjections compares the projection tables in db with what the
// ledger in store implies up to their projected_through index, and returns
// one line per disagreement (none when they agree, or when the tables do not
// exist yet). It reads only.
func CheckProjections(ctx context.Context, store ledger.Store, db *sql.DB) ([]string, error) {
	c, err := CheckLedger(ctx, store, db)
	return c.Projections, err
}

// LedgerCheck is what CheckLedger found.
type LedgerCheck struct {
	// Skipped are the events the state machine cannot apply (the first
	// thousand), which the server skips at start; SkippedCount is how many.
	Skipped      []Skipped
	SkippedCount int
	// Projections has one line per projection row that disagrees with the
	// ledger, and one for a stored snapshot of the task state that does.
	Projections []string
}

// CheckLedger replays the whole ledger in store through the state machine,
// as the server does at start, and reports the events it skips; and it
// compares the projection tables in db (when they exist) with the state as
// of their projected_through index, and the stored snapshot of the state
// (when there is one of this version) with the state as of its index. It
// reads only; `writ ledger verify` calls it.
func CheckLedger(ctx context.Context, store ledger.Store, db *sql.DB) (LedgerCheck, error) {
	var c LedgerCheck
	ok, err := dialectOf(store).hasTable(ctx, db, "task_projection")
	if err != nil {
		return c, err
	}
	// One snapshot of the tables: a server writing them meanwhile (another
	// replica's, say) must not show rows newer than projected_through.
	// (SQLite: one server writes, and a transaction here could wait on it.)
	var q sqlQuerier = db
	if ok && dialectOf(store) == dialectPostgres {
		tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
		if err != nil {
			return c, err
		}
		defer tx.Rollback()
		q = tx
	}
	var through int64 = -1
	if ok {
		if through, err = readThrough(ctx, q); err != nil {
			return c, err
		}
	}
	snap, err := snapshotToCheck(ctx, q, store)
	if err != nil {
		return c, err
	}
	st := NewState()
	compared := !ok
	compare := func() error {
		compared = true
		diffs, err := compareTables(ctx, q, st)
		c.Projections = append(c.Projections, diffs...)
		return err
	}
	var snapDiffs []string
	err = store.ScanLeaves(ctx, 0, func(index uint64, leaf []byte) error {
		if !compared && int64(index) > through {
			if err := compare(); err != nil {
				return err
			}
		}
		e, err := ledger.ParseLeaf(index, leaf)
		if err != nil {
			return err
		}
		st.Replay(e)
		if snap != nil && index == snap.through {
			snapDiffs = compareSnapshot(st, snap, leaf)
			snap = nil
		}
		return nil
	})
	if err != nil {
		return c, fmt.Errorf("replaying the ledger: %w", err)
	}
	if !compared {
		if err := compare(); err != nil {
			return c, err
		}
	}
	if snap != nil {
		snapDiffs = []string{fmt.Sprintf("task_snapshot covers event %d, which the ledger does not hold", snap.through)}
	}
	c.Projections = append(c.Projections, snapDiffs...)
	c.Skipped, c.SkippedCount = st.Skipped()
	return c, nil
}
