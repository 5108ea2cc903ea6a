package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Filter selects events. Empty fields match everything. Tool, Resource,
// Agent and Principal may hold '*' wildcards (any run of characters).
type Filter struct {
	TaskID, Agent, Principal, Tool, Resource, Type, Decision string
	// PolicyVersion selects events decided by (or loading) one version.
	PolicyVersion string
	// From and To bound the event time, inclusive; zero is open.
	From, To time.Time
	// After is a cursor from a previous page: only events with a larger
	// index are returned.
	After string
	// Limit is the page size: default 100, at most MaxLimit.
	Limit int
}

// MaxLimit is the largest page.
const MaxLimit = 1000

// ErrInvalid reports a filter that cannot be run.
var ErrInvalid = errors.New("invalid query")

// Event is one indexed event.
type Event struct {
	Index         uint64    `json:"index"`
	Time          time.Time `json:"time"`
	Type          string    `json:"type"`
	TaskID        string    `json:"task_id,omitempty"`
	Principal     string    `json:"principal,omitempty"`
	Agent         string    `json:"agent,omitempty"`
	DecisionID    string    `json:"decision_id,omitempty"`
	PolicyVersion string    `json:"policy_version,omitempty"`
	JTI           string    `json:"jti,omitempty"`
	Tool          string    `json:"tool,omitempty"`
	Operation     string    `json:"operation,omitempty"`
	Resource      string    `json:"resource,omitempty"`
	Decision      string    `json:"decision,omitempty"`
	ApprovalID    string    `json:"approval_id,omitempty"`
	Approver      string    `json:"approver,omitempty"`
	ActionID      string    `json:"action_id,omitempty"`
}

// Page is one page of events, in ledger order. Next, when not empty, is
// the cursor for the following page.
type Page struct {
	Events []Event `json:"events"`
	Next   string  `json:"next,omitempty"`
	// IndexedThrough is how many ledger events the index held when it
	// answered; less than the ledger's size only while it catches up on a
	// large backlog.
	IndexedThrough uint64 `json:"indexed_through"`
}

// eventCols are an event's columns as scanEvent reads them, from the
// events table e joined to the names its numbers name (eventsFrom).
const eventCols = `e.idx, e.time, COALESCE(n_type.value, ''), COALESCE(n_task.value, ''), COALESCE(n_principal.value, ''),
  COALESCE(n_agent.value, ''), e.decision_id, COALESCE(n_policy.value, ''), COALESCE(n_jti.value, ''),
  COALESCE(n_tool.value, ''), COALESCE(n_operation.value, ''), COALESCE(n_resource.value, ''),
  COALESCE(n_decision.value, ''), e.approval_id, COALESCE(n_approver.value, ''), e.action_id`

// eventsFrom is the events table as e, with the names of its numbers.
func (ix *Index) eventsFrom() string {
	var b strings.Builder
	b.WriteString(ix.t.events + ` e`)
	for _, c := range []string{"type", "task", "principal", "agent", "policy", "jti", "tool", "operation", "resource", "decision", "approver"} {
		b.WriteString(` LEFT JOIN ` + ix.t.names + ` n_` + c + ` ON n_` + c + `.id = e.` + c + `_n`)
	}
	return b.String()
}

func scanEvent(rows *sql.Rows) (Event, error) {
	var e Event
	var idx, t int64
	err := rows.Scan(&idx, &t, &e.Type, &e.TaskID, &e.Principal, &e.Agent, &e.DecisionID, &e.PolicyVersion, &e.JTI,
		&e.Tool, &e.Operation, &e.Resource, &e.Decision, &e.ApprovalID, &e.Approver, &e.ActionID)
	if err != nil {
		return e, err
	}
	e.Index = uint64(idx)
	e.Time = time.Unix(0, t).UTC()
	return e, nil
}

// nanos is t as the events table keeps it, in nanoseconds since the Unix
// epoch, clamped to the range that holds (years 1678 to 2262).
func nanos(t time.Time) int64 {
	switch lo, hi := time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64); {
	case t.Before(lo):
		return math.MinInt64
	case t.After(hi):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// where builds a conjunction of conditions with ? placeholders.
type where struct {
	conds []string
	args  []any
}

func (w *where) eq(col, v string) {
	if v == "" {
		return
	}
	if hasWildcard(v) {
		w.conds = append(w.conds, col+` LIKE ? ESCAPE '\'`)
		w.args = append(w.args, likePattern(v))
		return
	}
	w.conds = append(w.conds, col+" = ?")
	w.args = append(w.args, v)
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

func hasWildcard(v string) bool { return strings.Contains(v, "*") }

// likePattern turns a '*' glob into a LIKE pattern.
func likePattern(glob string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`, `*`, `%`)
	return r.Replace(glob)
}

// Events answers a filter, catching the index up first.
func (ix *Index) Events(ctx context.Context, f Filter) (Page, error) {
	if f.Limit == 0 {
		f.Limit = 100
	}
	if f.Limit < 0 || f.Limit > MaxLimit {
		return Page{}, fmt.Errorf("%w: limit must be between 1 and %d", ErrInvalid, MaxLimit)
	}
	for _, s := range []string{f.TaskID, f.Agent, f.Principal, f.Tool, f.Resource, f.Type, f.Decision, f.PolicyVersion} {
		if len(s) > 1024 {
			return Page{}, fmt.Errorf("%w: a filter value is longer than 1024 bytes", ErrInvalid)
		}
	}
	if err := ix.fresh(ctx); err != nil {
		return Page{}, err
	}
	var w where
	ix.named(&w, "e.task_n", f.TaskID)
	ix.named(&w, "e.agent_n", f.Agent)
	ix.named(&w, "e.principal_n", f.Principal)
	ix.named(&w, "e.tool_n", f.Tool)
	ix.named(&w, "e.resource_n", f.Resource)
	ix.named(&w, "e.type_n", f.Type)
	ix.named(&w, "e.decision_n", f.Decision)
	if f.PolicyVersion != "" {
		w.add("e.policy_n = "+ix.nameOf(), f.PolicyVersion)
	}
	if !f.From.IsZero() {
		w.add("e.time >= ?", nanos(f.From))
	}
	if !f.To.IsZero() {
		w.add("e.time <= ?", nanos(f.To))
	}
	if f.After != "" {
		n, err := strconv.ParseUint(f.After, 10, 63)
		if err != nil {
			return Page{}, fmt.Errorf("%w: bad cursor %q", ErrInvalid, f.After)
		}
		w.add("e.idx > ?", int64(n))
	}
	rows, err := ix.cfg.ReadDB.QueryContext(ctx, ix.q(`SELECT `+eventCols+` FROM `+ix.eventsFrom()+w.sql()+
		` ORDER BY e.idx LIMIT `+strconv.Itoa(f.Limit+1)), w.args...)
	if err != nil {
		return Page{}, err
	}
	defer rows.Close()
	p := Page{Events: []Event{}}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return Page{}, err
		}
		p.Events = append(p.Events, e)
	}
	if err := rows.Err(); err != nil {
		return Page{}, err
	}
	if len(p.Events) > f.Limit {
		p.Events = p.Events[:f.Limit]
		p.Next = strconv.FormatUint(p.Events[f.Limit-1].Index, 10)
	}
	p.IndexedThrough, err = ix.Through(ctx)
	return p, err
}

// TaskTree returns a task and its descendants, the task first, or an
// empty list when the index knows no such task.
func (ix *Index) TaskTree(ctx context.Context, taskID string) ([]string, error) {
	var n int
	err := ix.cfg.ReadDB.QueryRowContext(ctx, ix.q(`SELECT COUNT(*) FROM `+ix.t.tasks+` WHERE task_id = ?`), taskID).Scan(&n)
	if err != nil || n == 0 {
		return nil, err
	}
	out := []string{taskID}
	for i := 0; i < len(out); i++ {
		rows, err := ix.cfg.ReadDB.QueryContext(ctx, ix.q(`SELECT task_id FROM `+ix.t.tasks+` WHERE parent = ? ORDER BY requested_at`), out[i])
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// TaskEvents returns the ledger indexes of every event of the tasks named,
// ascending.
func (ix *Index) TaskEvents(ctx context.Context, taskIDs []string) ([]uint64, error) {
	if len(taskIDs) == 0 {
		return nil, nil
	}
	args := make([]any, len(taskIDs))
	for i, id := range taskIDs {
		args[i] = id
	}
	return ix.indexes(ctx, `SELECT idx FROM `+ix.t.events+` WHERE task_n IN (SELECT id FROM `+ix.t.names+` WHERE value IN (?`+
		strings.Repeat(", ?", len(taskIDs)-1)+`)) ORDER BY idx`, args...)
}

// indexes runs query (written with ? placeholders) on the read database
// and returns the ledger indexes it selects.
func (ix *Index) indexes(ctx context.Context, query string, args ...any) ([]uint64, error) {
	rows, err := ix.cfg.ReadDB.QueryContext(ctx, ix.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var i int64
		if err := rows.Scan(&i); err != nil {
			return nil, err
		}
		out = append(out, uint64(i))
	}
	return out, rows.Err()
}
