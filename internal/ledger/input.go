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
// time. Validation beyond the shape happens at Append.
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
