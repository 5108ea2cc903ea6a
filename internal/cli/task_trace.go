package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/task"
)

func traceCommand() *command {
	c := &command{name: "trace", args: "<task-id> [-o table|json]",
		summary: "reconstruct a task: every event of it and its child tasks, each checked against the signed ledger"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		af := addAPIFlags(fs, "auditor, admin or the task's requester")
		pos, cl, err := af.parse(c, fs, io, args, 1, 1, true)
		if err != nil {
			return err
		}
		tr, err := cl.Trace(ctx, pos[0])
		if err != nil {
			return apiError(err, cl.BaseURL())
		}
		if af.out == "json" {
			return printJSON(io, tr)
		}
		return printTrace(io, tr)
	}
	return c
}

// traceRow is one event of a trace, reduced to what a reader scans for.
type traceRow struct {
	time, index, task, typ, who, what, policy, decision, cred, result, verified string
}

// printTrace prints a trace as an aligned timeline: who did what, under
// which policy version and decision, with which credential, and what came
// of it. Every leaf must parse as a canonical writ event; one that does
// not is an error, not a row.
func printTrace(io IO, tr api.Trace) error {
	verified, err := printTimeline(io, tr)
	if err != nil {
		return err
	}
	if uses := traceLimits(tr); len(uses) > 0 {
		fmt.Fprintln(io.Stdout)
		for _, u := range uses {
			fmt.Fprintf(io.Stdout, "limits of task %s: %s\n", u.TaskID, u)
		}
	}
	fmt.Fprintf(io.Stdout, "\n%d/%d events verified: included in the signed checkpoint of size %d\n", verified, len(tr.Events), tr.CheckpointSize)
	if n := len(tr.Events) - verified; n > 0 {
		fmt.Fprintf(io.Stdout, "%d event(s) are newer than that checkpoint; the server signs one at its next batch\n", n)
	}
	if wd := tr.Witnessed; wd != nil {
		var by []string
		for _, c := range wd.Cosignatures {
			by = append(by, c.Witness+" at "+c.Time.UTC().Format(time.RFC3339))
		}
		fmt.Fprintf(io.Stdout, "witnessed: %d/%d events are in the checkpoint of size %d, cosigned by %d witnesses (quorum %d): %s\n",
			wd.Events, len(tr.Events), wd.CheckpointSize, len(wd.Cosignatures), wd.Quorum, strings.Join(by, ", "))
	}
	return nil
}

// printTimeline prints the heading and the table of a trace and returns
// how many of its events are marked verified.
func printTimeline(io IO, tr api.Trace) (int, error) {
	rows := make([]traceRow, 0, len(tr.Events))
	verified := 0
	for _, te := range tr.Events {
		r, err := traceRowOf(te)
		if err != nil {
			return 0, fmt.Errorf("trace of %s: %w", tr.TaskID, err)
		}
		if te.Verified {
			verified++
		}
		rows = append(rows, r)
	}
	fmt.Fprintf(io.Stdout, "trace of task %s", tr.TaskID)
	if len(tr.Tasks) > 1 {
		fmt.Fprintf(io.Stdout, " and its child tasks %s", strings.Join(tr.Tasks[1:], ", "))
	}
	fmt.Fprint(io.Stdout, " (times in UTC)\n\n")
	children := len(tr.Tasks) > 1
	w := newTable(io)
	head := "TIME\tINDEX\tEVENT\tWHO\tDECISION / POLICY\tWHAT\tCREDENTIAL\tRESULT\tVERIFIED"
	if children {
		head = "TIME\tINDEX\tTASK\tEVENT\tWHO\tDECISION / POLICY\tWHAT\tCREDENTIAL\tRESULT\tVERIFIED"
	}
	fmt.Fprintln(w, head)
	dash := func(s string) string { return firstNonEmpty(s, "-") }
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t", r.time, r.index)
		if children {
			fmt.Fprintf(w, "%s\t", dash(r.task))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.typ, dash(r.who),
			dash(strings.TrimSpace(r.decision+" "+r.policy)), dash(r.what), dash(r.cred), dash(r.result), r.verified)
	}
	return verified, w.Flush()
}

// traceLimits returns the limits of the trace's tasks and the calls
// counted against them.
func traceLimits(tr api.Trace) []task.LimitUse {
	entries := make([]ledger.Entry, 0, len(tr.Events))
	for _, te := range tr.Events {
		if e, err := ledger.ParseLeaf(te.Index, te.Event); err == nil {
			entries = append(entries, e)
		}
	}
	return task.LimitUses(entries)
}

// traceRowOf reads one trace event. Its data is read by the event's type
// (package event); data that does not fit the type shows as far as it
// decoded, since a trace is there to show what the ledger holds.
func traceRowOf(te api.TraceEvent) (traceRow, error) {
	ent, err := ledger.ParseLeaf(te.Index, te.Event)
	if err != nil {
		return traceRow{}, err
	}
	e := ent.Event
	data, _ := event.Read(e)
	r := traceRow{time: e.Time.UTC().Format("2006-01-02 15:04:05.000"), index: fmt.Sprint(te.Index), task: e.TaskID,
		typ: e.Type, who: "writ", policy: shortVersion(e.PolicyVersion), cred: shortJTI(e.JTI), verified: "no"}
	if te.Verified {
		r.verified = "✓"
	}
	var reasons []string
	switch d := data.(type) {
	case event.TaskRequested:
		r.who, r.what = e.Principal, "for "+e.Agent
		if d.Scope.Limits != nil {
			r.result = "limits " + d.Scope.Limits.String()
		}
	case event.PolicyDecided:
		r.who, r.decision = "policy", d.Point+" "+d.Effect
		reasons = d.Reasons
	case event.ApprovalRequested:
		r.what = firstNonEmpty(strings.TrimSpace(d.Tool+" "+d.Resource), d.Kind+" "+d.ApprovalID)
		reasons = d.Reasons
	case event.ApprovalDecided:
		r.who = firstNonEmpty(d.Approver, "writ")
		r.what = firstNonEmpty(strings.TrimSpace(d.Tool+" "+d.Resource), d.Kind+" "+d.ApprovalID)
		r.decision = strings.TrimPrefix(e.Type, "approval.")
		r.result = d.Reason
	case event.ActionDecided:
		r.who = firstNonEmpty(e.Agent, e.Principal)
		r.decision = d.Effect
		if e.Type == ledger.TypeActionDenied && d.Refused != "" {
			r.decision = "deny (" + d.Refused + ")"
		}
		if e.Type == ledger.TypeActionAuthorized && d.StepUp != "" {
			r.decision = "allow (step-up)"
		}
		r.what = strings.TrimSpace(d.Tool + " " + d.Resource)
		r.result = firstNonEmpty(d.ActionID, d.ApprovalID)
		if l := d.Limit; l != nil {
			r.result = limitText(l, e.TaskID)
		}
		reasons = d.Reasons
	case event.ActionCompleted:
		r.who, r.what = firstNonEmpty(e.Agent, e.Principal), d.ActionID
		r.result = firstNonEmpty(d.Status, d.Reason, d.ActionID)
	case event.CredentialIssued:
		r.who, r.what = firstNonEmpty(e.Agent, e.Principal), "binding "+firstNonEmpty(d.Binding, "none")
	case event.CredentialRevoked:
		r.who, r.result = firstNonEmpty(e.Agent, e.Principal), d.Reason
	case event.Rejection:
		r.who, r.decision = firstNonEmpty(e.Agent, e.Principal), "rejected"
		reason, _ := d.Refusal()
		r.result = reason
		if a, ok := d.(event.AuthRejected); ok {
			r.result = firstNonEmpty(reason, a.ApprovalID)
		}
		if reason == event.ReasonSelfApproval {
			r.who = e.Principal // the requester tried to approve
		}
	case event.TaskEnded:
		r.who = firstNonEmpty(d.By, "writ")
		r.result = d.Reason
	case event.ToolsHidden:
		r.who, r.decision = firstNonEmpty(e.Agent, e.Principal), "hidden"
		r.what = strings.Join(d.Tools(), ", ")
		r.result = fmt.Sprintf("%d of %d listed tools hidden", len(d.Hidden), d.Listed)
	case event.TaskDelegated:
		r.what = "child " + d.Child
	case event.TaskActivated:
		r.result = "until "
		if !d.ExpiresAt.IsZero() {
			r.result += d.ExpiresAt.UTC().Format("2006-01-02 15:04:05")
		}
	case event.TaskDenied:
		reasons = d.Reasons
	}
	if r.result == "" && len(reasons) > 0 {
		r.result = reasons[0]
		if len(reasons) > 1 {
			r.result += fmt.Sprintf(" (+%d)", len(reasons)-1)
		}
	}
	r.result = oneLine(r.result, 60)
	r.what = oneLine(r.what, 60)
	if r.who == "" {
		r.who = firstNonEmpty(e.Principal, "-")
	}
	return r, nil
}

// shortJTI shortens a credential ID for tables.
func shortJTI(s string) string {
	if r := []rune(s); len(r) > 14 {
		return string(r[:13]) + "…"
	}
	return s
}

// shortVersion shortens a policy version for tables: sha256:0123456789ab.
func shortVersion(v string) string {
	if len(v) > len("sha256:")+12 {
		return v[:len("sha256:")+12]
	}
	return v
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// limitText names a limit reached: "limits.per_tool mail.send 5 reached",
// with the task that sets it when it is another.
func limitText(l *event.LimitReached, taskID string) string {
	what := "limits." + l.Name
	if l.Tool != "" {
		what += " " + l.Tool
	}
	what += fmt.Sprintf(" %d reached", l.Max)
	if l.TaskID != taskID {
		what += " (task " + l.TaskID + ")"
	}
	return what
}
