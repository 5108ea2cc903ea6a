package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/writhq/writ/api"
)

// MaxInputBytes bounds one event as submitted (bodies included), before
// MaxBodyBytes applies to each body.
const MaxInputBytes = 16 << 20

// DecodeEvent parses one event as submitted to `writ ledger append` or
// POST /v1/ledger/events. Unknown fields are an error; the ledger sets the
// time; and the type must be an import type (CheckImportType): writ's own
// event types are written by writ alone. Validation beyond the shape
// happens at Append.
func DecodeEvent(b []byte) (Event, error) {
	if len(b) > MaxInputBytes {
		return Event{}, &ValidationError{Reason: fmt.Sprintf("event is larger than %d bytes", MaxInputBytes)}
	}
	var in api.Event
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return Event{}, &ValidationError{Reason: describeJSONError(err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Event{}, &ValidationError{Reason: "trailing data after the event object"}
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

func describeJSONError(err error) string {
	msg := err.Error()
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON at byte %d: %s", se.Offset, strings.TrimPrefix(msg, "json: "))
	case errors.As(err, &te):
		return fmt.Sprintf("field %q: want %s, got %s", te.Field, te.Type, te.Value)
	case strings.Contains(msg, `unknown field "time"`):
		return `unknown field "time": the ledger sets the time; put a source system's time under "data"`
	case strings.HasPrefix(msg, "json: unknown field"):
		return strings.TrimPrefix(msg, "json: ") + ` (type-specific fields go under "data")`
	case errors.Is(err, io.EOF):
		return "empty input"
	}
	return strings.TrimPrefix(msg, "json: ")
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
