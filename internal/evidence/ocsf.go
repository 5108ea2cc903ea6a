package evidence

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
)

// OCSF API Activity (class 6003, category 6 Application Activity).
const (
	ocsfClass    = 6003
	ocsfCategory = 6
)

// ocsfRecord is the subset of an OCSF API Activity event writ fills.
type ocsfRecord struct {
	ActivityID   int            `json:"activity_id"`
	ActivityName string         `json:"activity_name"`
	CategoryUID  int            `json:"category_uid"`
	CategoryName string         `json:"category_name"`
	ClassUID     int            `json:"class_uid"`
	ClassName    string         `json:"class_name"`
	TypeUID      int            `json:"type_uid"`
	TypeName     string         `json:"type_name"`
	Time         int64          `json:"time"`
	SeverityID   int            `json:"severity_id"`
	Severity     string         `json:"severity"`
	StatusID     int            `json:"status_id"`
	Status       string         `json:"status"`
	StatusDetail string         `json:"status_detail,omitempty"`
	Message      string         `json:"message,omitempty"`
	Actor        ocsfActor      `json:"actor"`
	API          ocsfAPI        `json:"api"`
	Resources    []ocsfResource `json:"resources,omitempty"`
	SrcEndpoint  map[string]any `json:"src_endpoint"`
	Metadata     ocsfMetadata   `json:"metadata"`
	Unmapped     map[string]any `json:"unmapped"`
}

type ocsfActor struct {
	User           map[string]any      `json:"user,omitempty"`
	AppName        string              `json:"app_name,omitempty"`
	AppUID         string              `json:"app_uid,omitempty"`
	Session        map[string]any      `json:"session,omitempty"`
	Authorizations []ocsfAuthorization `json:"authorizations"`
}

type ocsfAuthorization struct {
	Decision string         `json:"decision"`
	Policy   map[string]any `json:"policy,omitempty"`
}

type ocsfAPI struct {
	Operation string         `json:"operation"`
	Service   map[string]any `json:"service,omitempty"`
	Request   map[string]any `json:"request,omitempty"`
}

type ocsfResource struct {
	UID  string `json:"uid"`
	Type string `json:"type,omitempty"`
	// Labels carry writ's data class ("data_class:confidential").
	Labels []string `json:"labels,omitempty"`
}

type ocsfMetadata struct {
	Version        string         `json:"version"`
	Product        map[string]any `json:"product"`
	UID            string         `json:"uid"`
	CorrelationUID string         `json:"correlation_uid,omitempty"`
	LogName        string         `json:"log_name"`
}

// ocsfActivity maps an operation to an OCSF activity.
func ocsfActivity(op string) (int, string) {
	switch strings.ToLower(op) {
	case "create", "write", "send", "post", "insert", "add":
		return 1, "Create"
	case "read", "get", "list", "search", "query", "call":
		return 2, "Read"
	case "update", "put", "patch", "modify":
		return 3, "Update"
	case "delete", "remove":
		return 4, "Delete"
	}
	return 99, "Other"
}

// ocsfJSONL is the bundle's ocsf.jsonl: one API Activity record per
// decision on a call (authorized or denied), per recorded result, and per
// refused token.
func ocsfJSONL(v *view) []byte {
	type authz struct{ tool, op, resource, class, pv, decision string }
	actions := map[string]authz{}
	var b bytes.Buffer
	for _, e := range v.events {
		ev := e.Event
		// Data that does not fit its type maps as far as it decoded.
		data, _ := event.Read(ev)
		var r ocsfRecord
		var a authz
		actionID := ""
		switch d := data.(type) {
		case event.ActionDecided:
			a = authz{tool: d.Tool, op: d.Operation, resource: d.Resource, class: d.DataClass, pv: ev.PolicyVersion, decision: "allow"}
			r.StatusID, r.Status = 1, "Success"
			if ev.Type == ledger.TypeActionDenied {
				a.decision = "deny"
				r.StatusID, r.Status = 2, "Failure"
				r.StatusDetail = firstOf(d.Refused, d.Effect)
			} else {
				actions[d.ActionID] = a
			}
			r.Message = strings.Join(d.Reasons, "; ")
			actionID = d.ActionID
		case event.ActionCompleted:
			a = actions[d.ActionID]
			r.StatusID, r.Status = 1, "Success"
			if d.Status != "ok" {
				r.StatusID, r.Status = 2, "Failure"
			}
			r.StatusDetail = "result " + d.Status
			actionID = d.ActionID
		case event.ToolsHidden:
			// The listing was answered; these tools were withheld from it.
			a = authz{tool: "tools/list", op: "list", pv: ev.PolicyVersion, decision: "deny"}
			r.StatusID, r.Status = 1, "Success"
			for _, h := range d.Hidden {
				r.Resources = append(r.Resources, ocsfResource{UID: h.Tool, Type: "tool"})
			}
			r.StatusDetail = fmt.Sprintf("%d of %d listed tools hidden", len(d.Hidden), d.Listed)
		case event.Rejection:
			a = authz{tool: "authorize", decision: "deny"}
			r.StatusID, r.Status = 2, "Failure"
			r.StatusDetail, r.Message = d.Refusal()
		default:
			continue
		}
		r.ActivityID, r.ActivityName = ocsfActivity(a.op)
		r.CategoryUID, r.CategoryName = ocsfCategory, "Application Activity"
		r.ClassUID, r.ClassName = ocsfClass, "API Activity"
		r.TypeUID, r.TypeName = ocsfClass*100+r.ActivityID, "API Activity: "+r.ActivityName
		r.Time = ev.Time.UnixMilli()
		r.SeverityID, r.Severity = 1, "Informational"
		if r.StatusID == 2 {
			r.SeverityID, r.Severity = 2, "Low"
		}
		auth := ocsfAuthorization{Decision: a.decision}
		if a.pv != "" {
			auth.Policy = map[string]any{"uid": a.pv, "version": a.pv, "name": "writ policy bundle"}
		}
		r.Actor = ocsfActor{AppName: "agent", AppUID: ev.Agent, Authorizations: []ocsfAuthorization{auth}}
		if ev.Principal != "" {
			r.Actor.User = map[string]any{"uid": ev.Principal}
		}
		if ev.TaskID != "" || ev.JTI != "" {
			r.Actor.Session = map[string]any{}
			if ev.TaskID != "" {
				r.Actor.Session["uid"] = ev.TaskID
			}
			if ev.JTI != "" {
				r.Actor.Session["credential_uid"] = ev.JTI
			}
		}
		r.Unmapped = map[string]any{"writ_type": ev.Type, "ledger_index": e.Index}
		r.API = ocsfAPI{Operation: a.tool}
		if actionID != "" {
			r.API.Request = map[string]any{"uid": actionID}
		}
		if fam, _, ok := strings.Cut(a.tool, "."); ok {
			r.API.Service = map[string]any{"name": fam}
		}
		if a.op != "" {
			r.Unmapped["operation"] = a.op
		}
		if a.resource != "" && r.Resources == nil {
			res := ocsfResource{UID: a.resource, Type: "tool resource"}
			if a.class != "" {
				res.Labels = []string{"data_class:" + a.class}
			}
			r.Resources = []ocsfResource{res}
		}
		r.SrcEndpoint = map[string]any{"name": ev.Agent}
		r.Metadata = ocsfMetadata{
			Version: OCSFVersion, Product: map[string]any{"name": "writ", "vendor_name": "writ"},
			UID: v.m.Origin + "/" + strconv.FormatUint(e.Index, 10), CorrelationUID: ev.TaskID, LogName: v.m.Origin,
		}
		if ev.DecisionID != "" {
			r.Unmapped["decision_id"] = ev.DecisionID
		}
		if ev.TraceID != "" {
			r.Unmapped["trace_id"] = ev.TraceID
		}
		line, _ := json.Marshal(r)
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}
