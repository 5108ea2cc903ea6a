package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/httpjson"
)

// MaxInputBytes bounds one event as submitted (bodies included), before
// MaxBodyBytes applies to each body.
const MaxInputBytes = 16 << 20

// DecodeEvent parses one event as submitted to `writ ledger append` or
// POST /v1/ledger/events. Unknown fields are an error; the ledger sets the
// time and the task links (prev, delegation); and the type must be an import type (CheckImportType): writ's own
// event types are written by writ alone. Names are exact, and a name twice
// in one object (also inside data) is an error: the recorded canonical form
// must be what was sent. Validation beyond the shape happens at Append.
func DecodeEvent(b []byte) (Event, error) {
	if len(b) > MaxInputBytes {
		return Event{}, &ValidationError{Reason: fmt.Sprintf("event is larger than %d bytes", MaxInputBytes)}
	}
	var in api.Event
	if err := httpjson.Unmarshal(b, &in); err != nil {
		return Event{}, &ValidationError{Reason: describeJSONError(err)}
	}
	if err := CheckImportType(in.Type); err != nil {
		return Event{}, err
	}
	e := Event{
		Type: in.Type, TaskID: in.TaskID, Principal: in.Principal, Agent: in.Agent,
		DecisionID: in.DecisionID, PolicyVersion: in.PolicyVersion, JTI: in.JTI, TraceID: in.TraceID,
		Data: in.Data,
	}
	if len(in.Bodies) > 0 {
		e.Bodies = make(map[string][]byte, len(in.Bodies))
		for k, v := range in.Bodies {
			e.Bodies[k] = []byte(v)
		}
	}
	if string(bytes.TrimSpace(e.Data)) == "null" {
		e.Data = nil
	}
	return e, nil
}

// describeJSONError words a refusal of httpjson.Unmarshal for an event.
func describeJSONError(err error) string {
	var be *httpjson.BodyError
	switch {
	case !errors.As(err, &be):
		return err.Error()
	case strings.HasPrefix(be.Detail, "unknown field") && be.Field == "time":
		return `unknown field "time": the ledger sets the time; put a source system's time under "data"`
	case strings.HasPrefix(be.Detail, "unknown field") && (be.Field == "prev" || be.Field == "delegation"):
		return fmt.Sprintf(`unknown field %q: the ledger links each task's events itself as it sequences them`, be.Field)
	case strings.HasPrefix(be.Detail, "unknown field") && !strings.Contains(be.Field, "."):
		return be.Detail + ` (type-specific fields go under "data")`
	}
	return be.Detail
}

// MaxImportNameBytes bounds the name after "import." in an import type.
const MaxImportNameBytes = 128

// CheckImportType reports, as a *ValidationError, a type that may not be
// appended from outside writ. An import type is "import." followed by a
// lowercase dotted name: one or more segments of a-z, 0-9, "_" and "-",
// separated by single dots, at most MaxImportNameBytes in all
// ("import.siem.alert"). writ's own types (task.completed,
// approval.granted…) are refused: a forged one would stand in the ledger
// beside the events writ wrote, as if writ had written it.
func CheckImportType(t string) error {
	const rule = `events appended from outside writ must have a type "import." followed by a lowercase dotted name (segments of a-z, 0-9, _ and -, e.g. "import.siem.alert")`
	switch {
	case t == "":
		return &ValidationError{Field: "type", Reason: "missing; " + rule}
	case knownTypes[t]:
		return &ValidationError{Field: "type", Reason: fmt.Sprintf("%q is one of writ's own event types, which only writ writes; %s", t, rule)}
	}
	name, ok := strings.CutPrefix(t, ImportPrefix)
	if !ok || !validImportName(name) {
		return &ValidationError{Field: "type", Reason: fmt.Sprintf("unknown event type %q: %s", clip(t), rule)}
	}
	return nil
}

func validImportName(s string) bool {
	if len(s) > MaxImportNameBytes || !validTypeSuffix(s) {
		return false
	}
	return !strings.Contains(s, "..")
}

// clip shortens what a caller sent for quoting in an error.
func clip(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
