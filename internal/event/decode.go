package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/writhq/writ/internal/ledger"
)

// ErrUnknownType is the error of Decode and Read for an event type writ
// does not write, such as an import type.
var ErrUnknownType = errors.New("not an event type writ writes")

// registry maps each event type writ writes to the Go types its data
// takes: one, but three for auth.rejected (see shapeOf).
var registry = map[string][]reflect.Type{
	ledger.TypeTaskRequested:     {reflect.TypeFor[TaskRequested]()},
	ledger.TypePolicyDecided:     {reflect.TypeFor[PolicyDecided]()},
	ledger.TypeApprovalRequested: {reflect.TypeFor[ApprovalRequested]()},
	ledger.TypeApprovalGranted:   {reflect.TypeFor[ApprovalDecided]()},
	ledger.TypeApprovalDenied:    {reflect.TypeFor[ApprovalDecided]()},
	ledger.TypeTaskActivated:     {reflect.TypeFor[TaskActivated]()},
	ledger.TypeCredentialIssued:  {reflect.TypeFor[CredentialIssued]()},
	ledger.TypeCredentialRevoked: {reflect.TypeFor[CredentialRevoked]()},
	ledger.TypeActionAuthorized:  {reflect.TypeFor[ActionDecided]()},
	ledger.TypeActionDenied:      {reflect.TypeFor[ActionDecided]()},
	ledger.TypeActionCompleted:   {reflect.TypeFor[ActionCompleted]()},
	ledger.TypeTaskDelegated:     {reflect.TypeFor[TaskDelegated]()},
	ledger.TypeTaskCompleted:     {reflect.TypeFor[TaskEnded]()},
	ledger.TypeTaskExpired:       {reflect.TypeFor[TaskEnded]()},
	ledger.TypeTaskRevoked:       {reflect.TypeFor[TaskEnded]()},
	ledger.TypeTaskDenied:        {reflect.TypeFor[TaskDenied]()},
	ledger.TypeTaskHeld:          {reflect.TypeFor[TaskHeld]()},
	ledger.TypeTaskReleased:      {reflect.TypeFor[TaskReleased]()},
	ledger.TypePolicyLoaded:      {reflect.TypeFor[PolicyLoaded]()},
	ledger.TypePolicyShadow:      {reflect.TypeFor[ShadowDisagreed]()},
	ledger.TypePolicyRejected:    {reflect.TypeFor[PolicyRejected]()},
	ledger.TypeAuthRejected: {reflect.TypeFor[AuthRejected](), reflect.TypeFor[RequestRejected](),
		reflect.TypeFor[RejectionSummary]()},
	ledger.TypeToolsHidden:    {reflect.TypeFor[ToolsHidden]()},
	ledger.TypeBodyErased:     {reflect.TypeFor[BodyErased]()},
	ledger.TypeLedgerStarted:  {reflect.TypeFor[LedgerStarted]()},
	ledger.TypeWitnessRefused: {reflect.TypeFor[WitnessRefused]()},
}

// Types returns the event types this package has data types for, sorted.
func Types() []string {
	out := make([]string, 0, len(registry))
	for t := range registry {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Shapes returns the Go types the data of event type typ can take: one for
// every type writ writes but auth.rejected, which has three
// (AuthRejected, RequestRejected and RejectionSummary); none for a type
// writ does not write.
func Shapes(typ string) []reflect.Type { return slices.Clone(registry[typ]) }

// shapeOf returns the Go type of data, an event of type typ's. The shapes
// of auth.rejected are told apart by their members.
func shapeOf(typ string, data []byte) (reflect.Type, error) {
	shapes := registry[typ]
	if len(shapes) == 0 {
		return nil, fmt.Errorf("%q: %w", typ, ErrUnknownType)
	}
	if typ != ledger.TypeAuthRejected {
		return shapes[0], nil
	}
	var peek struct {
		Reason string          `json:"reason"`
		Method json.RawMessage `json:"method"`
	}
	// Case-sensitive, as the members were written; anything else about
	// data is for the decoding that follows to find.
	jsonv2.Unmarshal(data, &peek)
	switch {
	case peek.Reason == ReasonSummary:
		return reflect.TypeFor[RejectionSummary](), nil
	case peek.Method != nil:
		return reflect.TypeFor[RequestRejected](), nil
	}
	return reflect.TypeFor[AuthRejected](), nil
}

// Decode returns the data of ev as a value of its Go type (TaskRequested
// for task.requested, …), decoded strictly: a member the type does not
// have, a name spelled in another case, a name twice in one object or a
// value of the wrong kind is an error. Absent members are left zero. It is
// for checking that data is exactly what writ writes; readers use Read.
// Errors: ErrUnknownType for a type writ does not write.
func Decode(ev ledger.Event) (any, error) {
	v, err := decode(ev, func(data []byte, v any) error {
		return jsonv2.Unmarshal(data, v, jsonv2.RejectUnknownMembers(true))
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Read returns the data of ev as a value of its Go type, as encoding/json
// decodes it: members the type does not have are ignored, so that data a
// later version of writ adds to a type does not blind a reader of it. Data
// that does not fit the type (a string where a number belongs) is an
// error, returned with the value holding what did decode, so a reader that
// shows events can still show this one. Errors: ErrUnknownType, with a nil
// value, for a type writ does not write. (It decodes with the v1
// semantics of the JSON v2 implementation, several times faster than
// encoding/json's; a sink reads every event of the log.)
func Read(ev ledger.Event) (any, error) { return decode(ev, jsonv1.Unmarshal) }

// decode decodes ev's data with unmarshal into a new value of its Go type
// and returns the value, with what unmarshal said of it.
func decode(ev ledger.Event, unmarshal func([]byte, any) error) (any, error) {
	t, err := shapeOf(ev.Type, ev.Data)
	if err != nil {
		return nil, err
	}
	p := reflect.New(t)
	if len(ev.Data) > 0 {
		if err = unmarshal(ev.Data, p.Interface()); err != nil {
			err = fmt.Errorf("%s data: %w", ev.Type, err)
		}
	}
	return p.Elem().Interface(), err
}

// TimeText returns t as a data member holding it is written: RFC 3339 with
// as many fractional digits as it needs, as encoding/json writes a
// time.Time. The zero time, which a member left out decodes to, is "".
func TimeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}
