package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/writhq/writ/internal/ledger"
)

const throughKey = "through"

// Through returns how many leaves the index holds (the next index to read).
func (ix *Index) Through(ctx context.Context) (uint64, error) { return ix.through(ctx, ix.cfg.DB) }

// through reads the high-water mark through q: the database, or a
// transaction.
func (ix *Index) through(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (uint64, error) {
	var n int64
	err := q.QueryRowContext(ctx, ix.q(`SELECT value FROM `+ix.t.meta+` WHERE key = ?`), throughKey).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return uint64(n), err
}

// CatchUp indexes every leaf the store holds beyond the index's high-water
// mark, Batch leaves per transaction, and returns the new mark. Rows are
// inserted idempotently, so a crash or a second tailer does no harm.
func (ix *Index) CatchUp(ctx context.Context) (uint64, error) {
	err := ix.follow.CatchUp(ctx)
	return ix.follow.Position(), err
}

// MaxQueryWait is the longest a query waits for the index to catch up
// before answering from what is indexed (a large backlog, after the index
// was dropped or a long outage, takes minutes to index).
const MaxQueryWait = 2 * time.Second

// fresh catches the index up before a query, waiting at most MaxQueryWait.
func (ix *Index) fresh(ctx context.Context) error { return ix.catchUpTo(ctx, false) }

// catchUpTo catches the index up to the store's size, waiting at most
// MaxQueryWait. Unless strict, a query answers from what is indexed when
// the backlog is large (the tailer's job) or the wait runs out; strict
// fails instead.
func (ix *Index) catchUpTo(ctx context.Context, strict bool) error {
	size, err := ix.cfg.Store.Size(ctx)
	if err != nil {
		return err
	}
	if !strict {
		through, err := ix.Through(ctx)
		if err != nil {
			return err
		}
		// A backlog this large is the tailer's job; a query answers at once.
		if size-min(size, through) > 50_000 {
			ix.follow.Notify()
			return nil
		}
	}
	wctx, cancel := context.WithTimeout(ctx, MaxQueryWait)
	defer cancel()
	err = ix.follow.SyncTo(wctx, size)
	if err != nil && !strict && wctx.Err() != nil && ctx.Err() == nil {
		ix.log.WarnContext(ctx, "query index: answering while the index is still catching up")
		return nil
	}
	if err != nil && strict {
		return fmt.Errorf("query index: catching up to %d: %w", size, err)
	}
	return err
}

// tailer is the index as the ledger's follower feeds it: its position is
// the high-water mark, kept in the transaction that indexes each batch.
type tailer struct{ ix *Index }

func (t tailer) Position(ctx context.Context) (uint64, error) {
	n, err := t.ix.Through(ctx)
	if err != nil {
		return 0, fmt.Errorf("query index: %w", err)
	}
	return n, nil
}

func (t tailer) Apply(ctx context.Context, ents []ledger.Entry) (uint64, error) {
	next, err := t.ix.indexBatch(ctx, ents)
	if err != nil {
		return next, fmt.Errorf("query index: leaves from %d: %w", ents[0].Index, err)
	}
	return next, nil
}

// indexBatch indexes consecutive entries of the log in one transaction
// and returns the index's new high-water mark. Several tailers may share
// the index (replicas on one PostgreSQL): under the index's lock, entries
// another one indexed meanwhile are skipped rather than indexed twice, and
// the mark returned may lie beyond this batch. A mark below the batch
// (ResetThrough moved it back) is returned as it is, indexing nothing, so
// that the tailer goes back there.
func (ix *Index) indexBatch(ctx context.Context, ents []ledger.Entry) (uint64, error) {
	start := ents[0].Index
	tx, err := ix.begin(ctx)
	if err != nil {
		return start, err
	}
	defer tx.Rollback()
	through, err := ix.through(ctx, tx)
	if err != nil {
		return start, err
	}
	end := start + uint64(len(ents))
	if through >= end || through < start {
		return through, nil
	}
	if through > start {
		ents, start = ents[through-start:], through
	}
	// Event rows go in several to a statement; the tool and resource that
	// a result or an approval takes from an earlier event come from this
	// batch's own events first, then from the table.
	seen := batchCalls{actions: map[string]call{}, approvals: map[string]call{}}
	names := batchNames{}
	args := make([]any, 0, rowsPerInsert*eventInsertArgs)
	var full *sql.Stmt // the statement for rowsPerInsert rows, prepared once
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	flush := func() error {
		n := len(args) / eventInsertArgs
		if n == 0 {
			return nil
		}
		var err error
		if n == rowsPerInsert {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, ix.insertEvents(n)); err != nil {
					return err
				}
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, ix.insertEvents(n), args...)
		}
		args = args[:0]
		return err
	}
	for k := range ents {
		ev := &ents[k].Event
		d := decodeData(ev)
		r, err := ix.row(ctx, tx, ev, d, &seen)
		if err != nil {
			return start, err
		}
		args = append(args, int64(ents[k].Index), nanos(ev.Time))
		for _, n := range [...]string{ev.Type, ev.TaskID, ev.Principal, ev.Agent} {
			if args, err = ix.appendName(ctx, tx, args, n, names); err != nil {
				return start, err
			}
		}
		args = append(args, ev.DecisionID)
		for _, n := range [...]string{ev.PolicyVersion, ev.JTI, r.tool, r.operation, r.resource, r.decision} {
			if args, err = ix.appendName(ctx, tx, args, n, names); err != nil {
				return start, err
			}
		}
		args = append(args, r.approvalID)
		for _, n := range [...]string{r.approver, r.environment} {
			if args, err = ix.appendName(ctx, tx, args, n, names); err != nil {
				return start, err
			}
		}
		args = append(args, d.ActionID)
		if len(args) == rowsPerInsert*eventInsertArgs {
			if err := flush(); err != nil {
				return start, err
			}
		}
		if err := ix.project(ctx, tx, ev, d); err != nil {
			return start, err
		}
	}
	if err := flush(); err != nil {
		return start, err
	}
	_, err = tx.ExecContext(ctx, ix.q(`INSERT INTO `+ix.t.meta+` (key, value) VALUES (?, ?)
	  ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE `+ix.t.meta+`.value < excluded.value`),
		throughKey, int64(end))
	if err != nil {
		return start, err
	}
	if err := tx.Commit(); err != nil {
		return start, err
	}
	ix.keepNames(names)
	return end, nil
}

// appendName appends the number of name s to args.
func (ix *Index) appendName(ctx context.Context, tx *sql.Tx, args []any, s string, names batchNames) ([]any, error) {
	id, err := ix.nameID(ctx, tx, s, names)
	return append(args, id), err
}

// begin starts an index transaction. The index is derived from the ledger
// and its high-water mark is written in the same transaction, so it need
// not wait for its own flush to disk: a crash loses at most a suffix that
// the next catch-up indexes again. On PostgreSQL synchronous_commit is off
// for the transaction only, which also takes the index's advisory lock; on
// SQLite the index has a database file of its own, opened with
// synchronous=NORMAL (see OpenSQLite).
func (ix *Index) begin(ctx context.Context) (*sql.Tx, error) {
	tx, err := ix.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	if ix.cfg.Dialect == Postgres {
		// One tailer at a time (on SQLite the transaction's write lock
		// does this). The two-key form keeps clear of the store's locks.
		_, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit = off`)
		if err == nil {
			_, err = tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(2003, hashtext($1))`, ix.t.meta)
		}
		if err != nil {
			tx.Rollback()
			return nil, err
		}
	}
	return tx, nil
}

// row is the part of an event's index row that comes from its data.
type row struct {
	tool, operation, resource, decision, approvalID, approver, environment string
}

// eventData is the union of the data members the index reads, decoded in
// one pass whatever the event's type: each member is one of the
// internal/event types' members, of the same name and kind
// (TestEventDataMembers holds it to them).
type eventData struct {
	Tool        string    `json:"tool"`
	Operation   string    `json:"operation"`
	Resource    string    `json:"resource"`
	Effect      string    `json:"effect"`
	ActionID    string    `json:"action_id"`
	ApprovalID  string    `json:"approval_id"`
	StepUp      string    `json:"step_up"`
	Approver    string    `json:"approver"`
	Status      string    `json:"status"`
	Environment string    `json:"environment"`
	Parent      string    `json:"parent"`
	TTL         string    `json:"ttl"`
	ExpiresAt   time.Time `json:"expires_at"`
	Reason      string    `json:"reason"`
	// Scope is kept as the JSON it is, for the tasks table.
	Scope jsontext.Value `json:"scope"`
}

func decodeData(ev *ledger.Event) eventData {
	var d eventData
	// Data a type does not have is left empty; a type whose data does not
	// decode is indexed by its envelope alone. (The leaf is canonical JSON,
	// so the stricter parser is safe; it is also several times faster.)
	if len(ev.Data) > 0 && jsonv2.Unmarshal(ev.Data, &d) != nil {
		d = eventData{}
	}
	return d
}

func (ix *Index) row(ctx context.Context, tx *sql.Tx, ev *ledger.Event, d eventData, seen *batchCalls) (row, error) {
	r := row{tool: d.Tool, operation: d.Operation, resource: d.Resource, approvalID: d.ApprovalID, approver: d.Approver, environment: d.Environment}
	switch ev.Type {
	case ledger.TypeActionAuthorized:
		r.decision = "allow"
		if d.StepUp != "" {
			r.approvalID = d.StepUp
		}
		if d.ActionID != "" {
			seen.actions[d.ActionID] = call{ev.TaskID, d.Tool, d.Operation, d.Resource}
		}
	case ledger.TypeApprovalRequested:
		if d.ApprovalID != "" {
			seen.approvals[d.ApprovalID] = call{ev.TaskID, d.Tool, d.Operation, d.Resource}
		}
	case ledger.TypeActionDenied, ledger.TypeTaskDenied:
		r.decision = "deny"
	case ledger.TypePolicyDecided:
		r.decision = d.Effect
	case ledger.TypeApprovalGranted:
		r.decision = "approve"
	case ledger.TypeApprovalDenied:
		r.decision = "deny"
	case ledger.TypeAuthRejected:
		r.decision = "reject"
	case ledger.TypeToolsHidden:
		r.decision = "hidden"
	case ledger.TypeActionCompleted:
		r.decision = d.Status
		// The call's tool and resource are on its authorization.
		if c, ok := seen.actions[d.ActionID]; ok {
			if c.taskID == ev.TaskID {
				r.tool, r.operation, r.resource = c.tool, c.operation, c.resource
			}
			break
		}
		if d.ActionID == "" {
			break
		}
		err := ix.callOf(ctx, tx, &r, `e.action_id = ? AND e.task_n = `+ix.nameOf()+` AND e.type_n = `+ix.nameOf(),
			d.ActionID, ev.TaskID, ledger.TypeActionAuthorized)
		if err != nil {
			return r, err
		}
	}
	if (ev.Type == ledger.TypeApprovalGranted || ev.Type == ledger.TypeApprovalDenied) && d.ApprovalID != "" {
		// A step-up's resource is on its request.
		if c, ok := seen.approvals[d.ApprovalID]; ok {
			r.tool, r.operation, r.resource = c.tool, c.operation, c.resource
			return r, nil
		}
		err := ix.callOf(ctx, tx, &r, `e.approval_id = ? AND e.type_n = `+ix.nameOf(), d.ApprovalID, ledger.TypeApprovalRequested)
		if err != nil {
			return r, err
		}
	}
	return r, nil
}

// callOf sets r's tool, operation and resource from the indexed event
// that cond (on the events table e) selects, if there is one.
func (ix *Index) callOf(ctx context.Context, tx *sql.Tx, r *row, cond string, args ...any) error {
	err := tx.QueryRowContext(ctx, ix.q(`SELECT COALESCE(n_tool.value, ''), COALESCE(n_operation.value, ''),
	  COALESCE(n_resource.value, '') FROM `+ix.eventsFrom()+` WHERE `+cond+` LIMIT 1`), args...).
		Scan(&r.tool, &r.operation, &r.resource)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	return err
}

// call is what a later event of the same call reads from an earlier one.
type call struct{ taskID, tool, operation, resource string }

// batchCalls are the authorizations and step-up requests of the batch
// being indexed, by action and approval ID.
type batchCalls struct{ actions, approvals map[string]call }

// rowsPerInsert is the most event rows one INSERT statement carries.
const rowsPerInsert = 64

// eventInsertCols are the event table's columns, in the order rows list them.
const eventInsertCols = `idx, time, type_n, task_n, principal_n, agent_n, decision_id, policy_n, jti_n, tool_n,
  operation_n, resource_n, decision_n, approval_id, approver_n, environment_n, action_id`

// eventInsertArgs is the number of eventInsertCols.
const eventInsertArgs = 17

// insertEvents is the statement inserting n event rows. Rows already
// there are left alone: catching up again does no harm. On SQLite that is
// OR IGNORE rather than ON CONFLICT DO NOTHING, which covers the key only:
// a statement that can still abort half-way (on a NOT NULL column, which
// no row here leaves empty) keeps a journal of every page it changes, to
// undo them.
func (ix *Index) insertEvents(n int) string {
	var b strings.Builder
	if ix.cfg.Dialect == SQLite {
		b.WriteString(`INSERT OR IGNORE INTO ` + ix.t.events + ` (` + eventInsertCols + `) VALUES `)
	} else {
		b.WriteString(`INSERT INTO ` + ix.t.events + ` (` + eventInsertCols + `) VALUES `)
	}
	one := "(?" + strings.Repeat(", ?", eventInsertArgs-1) + ")"
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
	}
	if ix.cfg.Dialect != SQLite {
		b.WriteString(` ON CONFLICT (idx) DO NOTHING`)
	}
	return ix.q(b.String())
}

// project keeps the tasks and credentials tables.
func (ix *Index) project(ctx context.Context, tx *sql.Tx, ev *ledger.Event, d eventData) error {
	at := ev.Time.UTC().Format(ledger.TimeFormat)
	var err error
	switch ev.Type {
	case ledger.TypeTaskRequested:
		ttl, _ := time.ParseDuration(d.TTL)
		_, err = tx.ExecContext(ctx, ix.q(`INSERT INTO `+ix.t.tasks+` (task_id, parent, principal, agent, scope,
		  environment, ttl_seconds, requested_at, activated_at, expires_at, ended_at, end_type)
		  VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', '', '', '') ON CONFLICT (task_id) DO NOTHING`),
			ev.TaskID, d.Parent, ev.Principal, ev.Agent, string(d.Scope), d.Environment, int64(ttl/time.Second), at)
	case ledger.TypeTaskActivated:
		_, err = tx.ExecContext(ctx, ix.q(`UPDATE `+ix.t.tasks+` SET activated_at = ?, expires_at = ? WHERE task_id = ?`),
			at, timeText(d.ExpiresAt), ev.TaskID)
	case ledger.TypeTaskCompleted, ledger.TypeTaskExpired, ledger.TypeTaskRevoked, ledger.TypeTaskDenied:
		_, err = tx.ExecContext(ctx, ix.q(`UPDATE `+ix.t.tasks+` SET ended_at = ?, end_type = ? WHERE task_id = ?`),
			at, ev.Type, ev.TaskID)
	case ledger.TypeCredentialIssued:
		_, err = tx.ExecContext(ctx, ix.q(`INSERT INTO `+ix.t.creds+` (jti, task_id, agent, issued_at, expires_at, revoked_at)
		  VALUES (?, ?, ?, ?, ?, '') ON CONFLICT (jti) DO NOTHING`), ev.JTI, ev.TaskID, ev.Agent, at, timeText(d.ExpiresAt))
	case ledger.TypeCredentialRevoked:
		_, err = tx.ExecContext(ctx, ix.q(`UPDATE `+ix.t.creds+` SET revoked_at = ? WHERE jti = ? AND revoked_at = ''`), at, ev.JTI)
	}
	return err
}

// timeText writes a time as the ledger does: fixed width, so it sorts as text.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(ledger.TimeFormat)
}

// ResetThrough lowers the high-water mark to n, so the next CatchUp
// re-reads the leaves from n on (rows already there are kept). It is for
// recovery and tests.
func (ix *Index) ResetThrough(ctx context.Context, n uint64) error {
	// Under the index's lock, as a batch is indexed: a tailer's batch
	// either comes before (and the mark is lowered after it) or finds the
	// mark lowered and goes back.
	tx, err := ix.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, ix.q(`UPDATE `+ix.t.meta+` SET value = ? WHERE key = ?`), int64(n), throughKey); err != nil {
		return err
	}
	return tx.Commit()
}
