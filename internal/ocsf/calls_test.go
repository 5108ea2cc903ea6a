package ocsf

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
)

// FuzzCallDataAsRead: the members a call's record takes from its event's
// data decode as event.Read decodes them, whatever the data: valid or
// not, with members of the wrong kind, in another case, twice, or ones
// writ does not write.
func FuzzCallDataAsRead(f *testing.F) {
	f.Add(0, `{"action_id":"act_1","args_mac":"hmac-sha256:dd","data_class":"internal","effect":"allow","obligations":{},"operation":"read","policy_ids":["p1"],"reasons":["in scope"],"resource":"repo:acme/web","tool":"tracker.issues"}`)
	f.Add(1, `{"tool":"x","effect":5,"action_id":"a","Tool":"y","REFUSED":"limit_reached","limit":{"max":"3"}}`)
	f.Add(1, `{"TOOL":"q","policy_ids":null,"reasons":"s","effect":"allow","obligations":{"approvals":"2"},"reasons":["b"]}`)
	f.Add(2, `{"action_id":"act","status":"ok","output_recorded":true,"redacted":["a","a"],"status":"error"}`)
	f.Add(2, `{"action_id":"act","status":"ok","tool":"tracker.issues","operation":"read","TOOL":"x"}`)
	f.Add(2, `{"action_id":"act","status":1,"Action_ID":"\u0041ct\ud800","output_recorded":"yes"}`)
	f.Add(0, `{"action_id":"a","tool":"t"} x`)
	f.Add(0, `{"tool":"a<b>\u2028","resource":null,"reasons":[null,"x",1]}`)
	f.Fuzz(func(t *testing.T, kind int, data string) {
		types := []string{ledger.TypeActionAuthorized, ledger.TypeActionDenied, ledger.TypeActionCompleted}
		typ := types[uint(kind)%uint(len(types))]
		full, _ := event.Read(ledger.Event{Type: typ, Data: []byte(data)})
		var got, want any
		switch d := full.(type) {
		case event.ActionDecided:
			var c decided
			readCall([]byte(data), &c)
			got = c
			want = decided{ActionID: d.ActionID, Tool: d.Tool, Operation: d.Operation, Resource: d.Resource,
				DataClass: d.DataClass, Effect: d.Effect, Reasons: d.Reasons, Refused: d.Refused}
		case event.ActionCompleted:
			var c completed
			readCall([]byte(data), &c)
			got, want = c, completed{ActionID: d.ActionID, Status: d.Status, Tool: d.Tool, Operation: d.Operation}
		default:
			t.Fatalf("event.Read(%s) gave %T", typ, full)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%s %s: (-event.Read +readCall)\n%s", typ, data, diff)
		}
	})
}

// TestCompletionOfACallNotSeen: a mapper that did not see a call
// authorized (a sink that began after it) takes the call's tool from its
// completion, which names it.
func TestCompletionOfACallNotSeen(t *testing.T) {
	m := NewMapper("writ.test/log", 0)
	r := m.Map(ledger.Entry{Index: 9, Event: ledger.Event{Type: ledger.TypeActionCompleted, TaskID: "tsk_1", Agent: "spiffe://acme/agent",
		Data: []byte(`{"action_id":"act_1","status":"ok","output_recorded":true,"tool":"tracker.issues","operation":"read"}`)}})
	if r.API == nil || r.API.Operation != "tracker.issues" {
		t.Errorf("the completion maps to %+v, want the operation tracker.issues", r.API)
	}
	old := m.Map(ledger.Entry{Index: 10, Event: ledger.Event{Type: ledger.TypeActionCompleted, TaskID: "tsk_1", Agent: "spiffe://acme/agent",
		Data: []byte(`{"action_id":"act_2","status":"ok","output_recorded":true}`)}})
	if old.API == nil || old.API.Operation != "" {
		t.Errorf("a completion recorded without its tool maps to %+v, want no operation", old.API)
	}
}
