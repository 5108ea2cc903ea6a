package query

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/writhq/writ/internal/ledger"
)

// ApprovalRecord is one approver's decision that let something reach a
// resource.
type ApprovalRecord struct {
	Index      uint64    `json:"index"`
	Time       time.Time `json:"time"`
	TaskID     string    `json:"task_id"`
	ApprovalID string    `json:"approval_id"`
	Approver   string    `json:"approver"`
	Decision   string    `json:"decision"`
	// Via is "step_up" when the approval named the resource itself, or
	// "task" when it approved a task that then accessed the resource.
	Via           string `json:"via"`
	Tool          string `json:"tool,omitempty"`
	Resource      string `json:"resource,omitempty"`
	PolicyVersion string `json:"policy_version,omitempty"`
}

// WhoApproved answers "who approved access to resource": decisions on
// step-ups for the resource, and on tasks that were then authorized to
// access it. resource may hold '*' wildcards.
func (ix *Index) WhoApproved(ctx context.Context, resource string, limit int) ([]ApprovalRecord, error) {
	if limit <= 0 || limit > MaxLimit {
		limit = MaxLimit
	}
	if err := ix.fresh(ctx); err != nil {
		return nil, err
	}
	// The approvals' decisions on the resource (a step-up), or on a task
	// authorized to reach it.
	var w where
	w.add(`e.type_n IN (SELECT id FROM `+ix.t.names+` WHERE value IN (?, ?))`, ledger.TypeApprovalGranted, ledger.TypeApprovalDenied)
	var direct, via where
	ix.named(&direct, "e.resource_n", resource)
	ix.named(&via, "a.resource_n", resource)
	via.add(`a.type_n = `+ix.nameOf(), ledger.TypeActionAuthorized)
	w.add(`(`+strings.Join(direct.conds, " AND ")+` OR e.task_n IN (SELECT a.task_n FROM `+ix.t.events+` a`+via.sql()+`))`,
		append(direct.args, via.args...)...)
	rows, err := ix.cfg.ReadDB.QueryContext(ctx, ix.q(`SELECT `+eventCols+` FROM `+ix.eventsFrom()+w.sql()+
		` ORDER BY e.idx LIMIT `+strconv.Itoa(limit)), w.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []ApprovalRecord{}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		r := ApprovalRecord{Index: e.Index, Time: e.Time, TaskID: e.TaskID, ApprovalID: e.ApprovalID, Approver: e.Approver,
			Decision: e.Decision, Via: "task", Tool: e.Tool, Resource: e.Resource, PolicyVersion: e.PolicyVersion}
		if e.Resource != "" {
			r.Via = "step_up"
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ActiveTask is a task that was active at an instant.
type ActiveTask struct {
	TaskID      string          `json:"task_id"`
	Parent      string          `json:"parent,omitempty"`
	Principal   string          `json:"principal"`
	Agent       string          `json:"agent"`
	Scope       json.RawMessage `json:"scope"`
	Environment string          `json:"environment"`
	TTLSeconds  int64           `json:"ttl_seconds"`
	ActivatedAt time.Time       `json:"activated_at"`
	ExpiresAt   time.Time       `json:"expires_at"`
	EndedAt     *time.Time      `json:"ended_at,omitempty"`
	EndType     string          `json:"end_type,omitempty"`
}

// ActiveCredential is a task credential that was live at an instant.
type ActiveCredential struct {
	JTI       string     `json:"jti"`
	TaskID    string     `json:"task_id"`
	Agent     string     `json:"agent"`
	IssuedAt  time.Time  `json:"issued_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Access is what was live at an instant.
type Access struct {
	At          time.Time          `json:"at"`
	Tasks       []ActiveTask       `json:"tasks"`
	Credentials []ActiveCredential `json:"credentials"`
}

// ActiveAt answers "which tasks, scopes and credentials were active at
// at", for one agent or (agent empty) all.
func (ix *Index) ActiveAt(ctx context.Context, at time.Time, agent string) (Access, error) {
	if err := ix.fresh(ctx); err != nil {
		return Access{}, err
	}
	a := Access{At: at.UTC(), Tasks: []ActiveTask{}, Credentials: []ActiveCredential{}}
	ts := timeText(at)
	var w where
	w.add("activated_at <> '' AND activated_at <= ? AND expires_at > ? AND (ended_at = '' OR ended_at > ?)", ts, ts, ts)
	w.eq("agent", agent)
	tasks, err := ix.tasksWhere(ctx, w)
	if err != nil {
		return a, err
	}
	a.Tasks = tasks
	var cw where
	cw.add("issued_at <= ? AND expires_at > ? AND (revoked_at = '' OR revoked_at > ?)", ts, ts, ts)
	cw.eq("agent", agent)
	rows, err := ix.cfg.ReadDB.QueryContext(ctx, ix.q(`SELECT jti, task_id, agent, issued_at, expires_at, revoked_at FROM `+
		ix.t.creds+cw.sql()+` ORDER BY issued_at`), cw.args...)
	if err != nil {
		return a, err
	}
	defer rows.Close()
	for rows.Next() {
		var c ActiveCredential
		var issued, exp, rev string
		if err := rows.Scan(&c.JTI, &c.TaskID, &c.Agent, &issued, &exp, &rev); err != nil {
			return a, err
		}
		c.IssuedAt, c.ExpiresAt, c.RevokedAt = parseTime(issued), parseTime(exp), optTime(rev)
		a.Credentials = append(a.Credentials, c)
	}
	return a, rows.Err()
}

// TasksActiveIn returns the tasks active at some time in [from, to].
func (ix *Index) TasksActiveIn(ctx context.Context, from, to time.Time) ([]ActiveTask, error) {
	if err := ix.fresh(ctx); err != nil {
		return nil, err
	}
	var w where
	w.add("activated_at <> '' AND activated_at <= ? AND expires_at >= ? AND (ended_at = '' OR ended_at >= ?)",
		timeText(to), timeText(from), timeText(from))
	return ix.tasksWhere(ctx, w)
}

func (ix *Index) tasksWhere(ctx context.Context, w where) ([]ActiveTask, error) {
	rows, err := ix.cfg.ReadDB.QueryContext(ctx, ix.q(`SELECT task_id, parent, principal, agent, scope, environment, ttl_seconds,
	  activated_at, expires_at, ended_at, end_type FROM `+ix.t.tasks+w.sql()+` ORDER BY activated_at, task_id`), w.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []ActiveTask{}
	for rows.Next() {
		var t ActiveTask
		var scope, act, exp, ended string
		if err := rows.Scan(&t.TaskID, &t.Parent, &t.Principal, &t.Agent, &scope, &t.Environment, &t.TTLSeconds,
			&act, &exp, &ended, &t.EndType); err != nil {
			return nil, err
		}
		t.Scope = json.RawMessage(scope)
		if len(t.Scope) == 0 {
			t.Scope = json.RawMessage("null")
		}
		t.ActivatedAt, t.ExpiresAt, t.EndedAt = parseTime(act), parseTime(exp), optTime(ended)
		out = append(out, t)
	}
	return out, rows.Err()
}

// Use is how one credential was exercised in a window.
type Use struct {
	JTI         string `json:"jti"`
	TaskID      string `json:"task_id"`
	Agent       string `json:"agent"`
	Tool        string `json:"tool"`
	Resource    string `json:"resource"`
	Decision    string `json:"decision"`
	Calls       int    `json:"calls"`
	Environment string `json:"environment,omitempty"`
}

// Uses returns, per credential, tool, resource and decision, how many
// calls were decided in [from, to].
func (ix *Index) Uses(ctx context.Context, from, to time.Time) ([]Use, error) {
	if err := ix.fresh(ctx); err != nil {
		return nil, err
	}
	// Counted by numbers, then named; a task's environment is its own.
	rows, err := ix.cfg.ReadDB.QueryContext(ctx, ix.q(`SELECT COALESCE(nj.value, ''), COALESCE(nt.value, ''),
	  COALESCE(na.value, ''), COALESCE(nl.value, ''), COALESCE(nr.value, ''), COALESCE(nd.value, ''), u.calls,
	  COALESCE(t.environment, '')
	  FROM (SELECT e.jti_n, e.task_n, e.agent_n, e.tool_n, e.resource_n, e.decision_n, COUNT(*) AS calls
	    FROM `+ix.t.events+` e
	    WHERE e.type_n IN (SELECT id FROM `+ix.t.names+` WHERE value IN (?, ?)) AND e.time >= ? AND e.time <= ?
	    GROUP BY e.jti_n, e.task_n, e.agent_n, e.tool_n, e.resource_n, e.decision_n) u
	  LEFT JOIN `+ix.t.names+` nj ON nj.id = u.jti_n LEFT JOIN `+ix.t.names+` nt ON nt.id = u.task_n
	  LEFT JOIN `+ix.t.names+` na ON na.id = u.agent_n LEFT JOIN `+ix.t.names+` nl ON nl.id = u.tool_n
	  LEFT JOIN `+ix.t.names+` nr ON nr.id = u.resource_n LEFT JOIN `+ix.t.names+` nd ON nd.id = u.decision_n
	  LEFT JOIN `+ix.t.tasks+` t ON t.task_id = nt.value
	  ORDER BY 3, 1, 4, 5, 6`),
		ledger.TypeActionAuthorized, ledger.TypeActionDenied, nanos(from), nanos(to))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Use{}
	for rows.Next() {
		var u Use
		if err := rows.Scan(&u.JTI, &u.TaskID, &u.Agent, &u.Tool, &u.Resource, &u.Decision, &u.Calls, &u.Environment); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(ledger.TimeFormat, s)
	return t
}

func optTime(s string) *time.Time {
	if s == "" {
		return nil
	}
	t := parseTime(s)
	return &t
}
