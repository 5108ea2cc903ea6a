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
// time. Names are exact, and a name twice in one object (also inside
// data) is an error: the recorded canonical form must be what was sent.
// Validation beyond the shape happens at Append.
func DecodeEvent(b []byte) (Event, error) {
	if len(b) > MaxInputBytes {
		return Event{}, &ValidationError{Reason: fmt.Sprintf("event is larger than %d bytes", MaxInputBytes)}
	}
	var in api.Event
	if err := httpjson.Unmarshal(b, &in); err != nil {
		return Event{}, &ValidationError{Reason: describeJSONError(err)}
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
	case strings.HasPrefix(be.Detail, "unknown field") && !strings.Contains(be.Field, "."):
		return be.Detail + ` (type-specific fields go under "data")`
	}
	return be.Detail
}
