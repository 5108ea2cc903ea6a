package evidence

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"sort"
	"strings"
	"time"

	"github.com/writhq/writ/internal/ledger"
)

// view is what the derived files (controls.csv, ocsf.jsonl, report.html)
// are made from: the manifest's header and the events with their disclosed
// bodies. Verify rebuilds them from the bundle and requires the same bytes.
type view struct {
	m      *Manifest
	events []disclosed
}

//go:embed report.html.tmpl
var reportTemplate string

var reportTmpl = template.Must(template.New("report").Parse(reportTemplate))

type reportRow struct {
	Index                                   uint64
	Time, Type, Who, What, Policy, Decision string
	Credential, Result, Task                string
	// Class colours the decision: "allow", "deny" or "".
	Class string
}

type reportApproval struct {
	Index                                                   uint64
	Time, Approval, Kind, Approver, Decision, Reason, Scope string
}

type reportCredential struct {
	Index                                uint64
	JTI, Agent, Issued, Expires, Revoked string
}

type reportPolicy struct {
	Version string
	// Loaded is when the bundle's policy.loaded event of it was recorded.
	Loaded string
	Index  uint64
}

type reportData struct {
	M           *Manifest
	Exported    string
	Intent      string
	Requester   string
	Agent       string
	Rows        []reportRow
	Approvals   []reportApproval
	Credentials []reportCredential
	Policies    []reportPolicy
	Erased      []Erased
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") }

// reportHTML is the bundle's report.html: a self-contained page (no
// scripts, no outside resources) for a reader who will not run writ.
func reportHTML(v *view) []byte {
	rd := reportData{M: v.m, Erased: v.m.Erased, Exported: v.m.CreatedAt.UTC().Format("2006-01-02 15:04:05 UTC")}
	loaded := map[string]disclosed{}
	for _, e := range v.events {
		if e.Event.Type == ledger.TypePolicyLoaded {
			loaded[e.Event.PolicyVersion] = e
		}
	}
	for pv := range v.m.Policies {
		p := reportPolicy{Version: pv}
		if e, ok := loaded[pv]; ok {
			p.Loaded, p.Index = fmtTime(e.Event.Time), e.Index
		}
		rd.Policies = append(rd.Policies, p)
	}
	sort.Slice(rd.Policies, func(i, j int) bool { return rd.Policies[i].Version < rd.Policies[j].Version })
	creds := map[string]*reportCredential{}
	var credOrder []string
	for _, e := range v.events {
		ev := e.Event
		d := fields(ev.Data)
		r := reportRow{Index: e.Index, Time: fmtTime(ev.Time), Type: ev.Type, Who: firstOf(ev.Principal, "writ"),
			Policy: shortVersion(ev.PolicyVersion), Credential: shortID(ev.JTI), Task: ev.TaskID}
		switch ev.Type {
		case ledger.TypeTaskRequested:
			if ev.TaskID == v.m.TaskID {
				rd.Requester, rd.Agent = ev.Principal, ev.Agent
				if b, ok := e.bodies["intent"]; ok {
					rd.Intent = string(b.data)
				}
			}
			r.What = "agent " + ev.Agent
		case ledger.TypePolicyDecided:
			r.Who, r.What, r.Decision = "policy", d.str("point"), d.str("effect")
			r.Result = d.joined("reasons")
		case ledger.TypeApprovalRequested:
			r.What, r.Result = d.str("kind")+" "+d.first("tool", "approval_id"), d.joined("reasons")
		case ledger.TypeApprovalGranted, ledger.TypeApprovalDenied:
			r.Who, r.Decision, r.Result = d.str("approver"), strings.TrimPrefix(ev.Type, "approval."), d.str("reason")
			r.What = d.str("approval_id")
			rd.Approvals = append(rd.Approvals, reportApproval{Index: e.Index, Time: r.Time, Approval: d.str("approval_id"),
				Kind: d.str("kind"), Approver: d.str("approver"), Decision: r.Decision, Reason: d.str("reason"),
				Scope: shortVersion(d.first("scope_hash", "args_mac"))})
		case ledger.TypeCredentialIssued:
			r.Who, r.What = ev.Agent, "expires "+d.str("expires_at")
			creds[ev.JTI] = &reportCredential{Index: e.Index, JTI: ev.JTI, Agent: ev.Agent, Issued: r.Time, Expires: d.str("expires_at")}
			credOrder = append(credOrder, ev.JTI)
		case ledger.TypeCredentialRevoked:
			r.Result = d.str("reason")
			if c := creds[ev.JTI]; c != nil {
				c.Revoked = r.Time
			}
		case ledger.TypeActionAuthorized, ledger.TypeActionDenied:
			r.Who, r.What, r.Decision = ev.Agent, strings.TrimSpace(d.str("tool")+" "+d.str("resource")), d.str("effect")
			if ev.Type == ledger.TypeActionDenied {
				r.Decision = "deny"
				if d.str("effect") != "deny" && d.str("effect") != "" {
					r.Decision = "deny (" + d.first("refused", "effect") + ")"
				}
			}
			r.Result = firstOf(d.joined("reasons"), d.str("action_id"))
		case ledger.TypeActionCompleted:
			r.Who, r.What, r.Result = ev.Agent, d.str("action_id"), d.str("status")
		case ledger.TypeAuthRejected:
			r.Who, r.Decision, r.Result = firstOf(ev.Agent, ev.Principal, "-"), "rejected", d.str("reason")
		case ledger.TypeTaskCompleted, ledger.TypeTaskExpired, ledger.TypeTaskRevoked:
			r.Who, r.Result = d.first("by"), d.str("reason")
		case ledger.TypeTaskActivated:
			r.Result = "until " + d.str("expires_at")
		case ledger.TypePolicyLoaded:
			r.What = strings.TrimSpace(d.str("role") + " " + d.str("engine") + " policy")
		case ledger.TypeToolsHidden:
			r.Who, r.Decision = firstOf(ev.Agent, ev.Principal), "hidden"
			hidden, _ := d["hidden"].([]any)
			var names []string
			for _, h := range hidden {
				if m, ok := h.(map[string]any); ok {
					names = append(names, fmt.Sprint(m["tool"]))
				}
			}
			r.What = strings.Join(names, ", ")
		case ledger.TypeTaskDelegated:
			r.What = "child " + d.str("child_task_id")
		case ledger.TypeBodyErased:
			r.What = "body " + d.str("name") + " of event " + d.str("index")
			r.Result = d.str("reason")
		}
		switch r.Decision {
		case "":
		case "allow", "granted", "require_approval":
			r.Class = "allow"
		default:
			r.Class = "deny"
		}
		if r.Decision == "require_approval" {
			r.Class = ""
		}
		rd.Rows = append(rd.Rows, r)
	}
	for _, j := range credOrder {
		rd.Credentials = append(rd.Credentials, *creds[j])
	}
	var b bytes.Buffer
	if err := reportTmpl.Execute(&b, rd); err != nil {
		panic(err) // the template is fixed and checked by the tests
	}
	return b.Bytes()
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// shortVersion shortens sha256:<hex> for tables.
// shortVersion shortens a digest ("sha256:…", "hmac-sha256:…") to 12 hex
// digits after its prefix.
func shortVersion(v string) string {
	if n := strings.IndexByte(v, ':') + 1 + 12; n < len(v) {
		return v[:n]
	}
	return v
}

func shortID(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}
