package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
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

// traceRowOf reads one trace event.
func traceRowOf(te api.TraceEvent) (traceRow, error) {
	ent, err := ledger.ParseLeaf(te.Index, te.Event)
	if err != nil {
		return traceRow{}, err
	}
	e := ent.Event
	var d map[string]any
	if len(e.Data) > 0 {
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return traceRow{}, fmt.Errorf("event %d: data: %w", te.Index, err)
		}
	}
	str := func(k string) string {
		s, _ := d[k].(string)
		return s
	}
	r := traceRow{time: e.Time.UTC().Format("2006-01-02 15:04:05.000"), index: fmt.Sprint(te.Index), task: e.TaskID,
		typ: e.Type, who: "writ", policy: shortVersion(e.PolicyVersion), cred: shortJTI(e.JTI), verified: "no"}
	if te.Verified {
		r.verified = "✓"
	}
	switch {
	case e.Type == ledger.TypeTaskRequested:
		r.who, r.what = e.Principal, "for "+e.Agent
	case e.Type == ledger.TypePolicyDecided:
		r.who, r.decision = "policy", str("point")+" "+str("effect")
	case strings.HasPrefix(e.Type, "approval."):
		r.who = firstNonEmpty(str("approver"), "writ")
		r.what = firstNonEmpty(strings.TrimSpace(str("tool")+" "+str("resource")), str("kind")+" "+str("approval_id"))
		if e.Type != ledger.TypeApprovalRequested {
			r.decision = strings.TrimPrefix(e.Type, "approval.")
		}
		r.result = str("reason")
	case strings.HasPrefix(e.Type, "action."), strings.HasPrefix(e.Type, "credential."), e.Type == ledger.TypeAuthRejected:
		r.who = firstNonEmpty(e.Agent, e.Principal)
		if e.Type == ledger.TypeActionAuthorized || e.Type == ledger.TypeActionDenied {
			r.decision = str("effect")
			if e.Type == ledger.TypeActionDenied && str("refused") != "" {
				r.decision = "deny (" + str("refused") + ")"
			}
			if e.Type == ledger.TypeActionAuthorized && d["step_up"] != nil {
				r.decision = "allow (step-up)"
			}
		}
		r.what = strings.TrimSpace(str("tool") + " " + str("resource"))
		if e.Type == ledger.TypeActionCompleted {
			r.what = str("action_id")
		}
		if e.Type == ledger.TypeCredentialIssued {
			r.what = "binding " + firstNonEmpty(str("binding"), "none")
		}
		r.result = firstNonEmpty(str("status"), str("reason"), str("action_id"), str("approval_id"))
		if e.Type == ledger.TypeAuthRejected {
			r.decision = "rejected"
			if str("reason") == "self_approval" {
				r.who = e.Principal // the requester tried to approve
			}
		}
	case e.Type == ledger.TypeTaskCompleted || e.Type == ledger.TypeTaskRevoked || e.Type == ledger.TypeTaskExpired:
		r.who = firstNonEmpty(str("by"), "writ")
		r.result = str("reason")
	case e.Type == ledger.TypeToolsHidden:
		r.who, r.decision = firstNonEmpty(e.Agent, e.Principal), "hidden"
		hidden, _ := d["hidden"].([]any)
		var names []string
		for _, h := range hidden {
			if m, ok := h.(map[string]any); ok {
				names = append(names, fmt.Sprint(m["tool"]))
			}
		}
		r.what = strings.Join(names, ", ")
		r.result = fmt.Sprintf("%d of %v listed tools hidden", len(hidden), d["listed"])
	case e.Type == ledger.TypeTaskDelegated:
		r.what = "child " + str("child_task_id")
	case e.Type == ledger.TypeTaskActivated:
		r.result = "until " + str("expires_at")
		if t, err := time.Parse(time.RFC3339Nano, str("expires_at")); err == nil {
			r.result = "until " + t.UTC().Format("2006-01-02 15:04:05")
		}
	}
	if r.result == "" {
		if rs, ok := d["reasons"].([]any); ok && len(rs) > 0 {
			r.result = fmt.Sprint(rs[0])
			if len(rs) > 1 {
				r.result += fmt.Sprintf(" (+%d)", len(rs)-1)
			}
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
