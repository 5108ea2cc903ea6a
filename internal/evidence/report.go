package evidence

import (
	"bytes"
	_ "embed"
	"html/template"
	"sort"
	"strings"
	"time"

	"github.com/writhq/writ/internal/event"
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
	// Frameworks names the frameworks of the bundle's mapping.
	Frameworks string
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") }

// reportHTML is the bundle's report.html: a self-contained page (no
// scripts, no outside resources) for a reader who will not run writ.
func reportHTML(v *view) []byte {
	rd := reportData{M: v.m, Erased: v.m.Erased, Exported: v.m.CreatedAt.UTC().Format("2006-01-02 15:04:05 UTC"),
		Frameworks: frameworksText(v.m.ControlsVersion)}
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
		// Data that does not fit its type shows as far as it decoded.
		data, _ := event.Read(ev)
		r := reportRow{Index: e.Index, Time: fmtTime(ev.Time), Type: ev.Type, Who: firstOf(ev.Principal, "writ"),
			Policy: shortVersion(ev.PolicyVersion), Credential: shortID(ev.JTI), Task: ev.TaskID}
		switch d := data.(type) {
		case event.TaskRequested:
			if ev.TaskID == v.m.TaskID {
				rd.Requester, rd.Agent = ev.Principal, ev.Agent
				if b, ok := e.bodies["intent"]; ok {
					rd.Intent = string(b.data)
				}
			}
			r.What = "agent " + ev.Agent
		case event.PolicyDecided:
			r.Who, r.What, r.Decision = "policy", d.Point, d.Effect
			r.Result = strings.Join(d.Reasons, "; ")
		case event.ApprovalRequested:
			r.What, r.Result = d.Kind+" "+firstOf(d.Tool, d.ApprovalID), strings.Join(d.Reasons, "; ")
		case event.ApprovalDecided:
			r.Who, r.Decision, r.Result = d.Approver, strings.TrimPrefix(ev.Type, "approval."), d.Reason
			r.What = d.ApprovalID
			rd.Approvals = append(rd.Approvals, reportApproval{Index: e.Index, Time: r.Time, Approval: d.ApprovalID,
				Kind: d.Kind, Approver: d.Approver, Decision: r.Decision, Reason: d.Reason,
				Scope: shortVersion(firstOf(d.ScopeHash, d.ArgsMAC))})
		case event.CredentialIssued:
			expires := event.TimeText(d.ExpiresAt)
			r.Who, r.What = ev.Agent, "expires "+expires
			creds[ev.JTI] = &reportCredential{Index: e.Index, JTI: ev.JTI, Agent: ev.Agent, Issued: r.Time, Expires: expires}
			credOrder = append(credOrder, ev.JTI)
		case event.CredentialRevoked:
			r.Result = d.Reason
			if c := creds[ev.JTI]; c != nil {
				c.Revoked = r.Time
			}
		case event.ActionDecided:
			r.Who, r.What, r.Decision = ev.Agent, strings.TrimSpace(d.Tool+" "+d.Resource), d.Effect
			if ev.Type == ledger.TypeActionDenied {
				r.Decision = "deny"
				if d.Effect != "deny" && d.Effect != "" {
					r.Decision = "deny (" + firstOf(d.Refused, d.Effect) + ")"
				}
			}
			r.Result = firstOf(strings.Join(d.Reasons, "; "), d.ActionID)
		case event.ActionCompleted:
			r.Who, r.What, r.Result = ev.Agent, d.ActionID, d.Status
		case event.Rejection:
			r.Who, r.Decision = firstOf(ev.Agent, ev.Principal, "-"), "rejected"
			r.Result, _ = d.Refusal()
		case event.TaskEnded:
			r.Who, r.Result = d.By, d.Reason
		case event.TaskActivated:
			r.Result = "until " + event.TimeText(d.ExpiresAt)
		case event.PolicyLoaded:
			r.What = strings.TrimSpace(d.Role + " " + d.Engine + " policy")
		case event.ToolsHidden:
			r.Who, r.Decision = firstOf(ev.Agent, ev.Principal), "hidden"
			r.What = strings.Join(d.Tools(), ", ")
		case event.TaskDelegated:
			r.What = "child " + d.Child
		case event.TaskHeld:
			r.Who, r.What, r.Result = d.By, "legal hold", d.Reason
		case event.TaskReleased:
			r.Who, r.What, r.Result = d.By, "legal hold lifted", d.Reason
		case event.BodyErased:
			// The report has never shown the erased body's index here, and
			// a bundle's report must be rebuilt byte for byte by every
			// later writ that verifies it; the index is in the erasures
			// table.
			r.What = "body " + d.Name + " of event "
			r.Result = d.Reason
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
