package event_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/jcs"
	"github.com/writhq/writ/internal/ledger"
)

func ev(typ, data string) ledger.Event {
	return ledger.Event{Type: typ, Data: json.RawMessage(data)}
}

// TestDecodeIsStrict: Decode refuses data that is not exactly the type's,
// where Read takes what fits and says what does not.
func TestDecodeIsStrict(t *testing.T) {
	for _, tt := range []struct {
		name string
		e    ledger.Event
		// decode is a substring of Decode's error; "" means no error.
		decode string
		// read is a substring of Read's error.
		read string
	}{
		{"as written", ev(ledger.TypeTaskDelegated, `{"child_task_id":"tsk_2"}`), "", ""},
		{"no data", ledger.Event{Type: ledger.TypeLedgerStarted}, "", ""},
		{"a member the type lacks", ev(ledger.TypeTaskDelegated, `{"child_task_id":"tsk_2","note":"x"}`), `unknown object member name "note"`, ""},
		{"a name in another case", ev(ledger.TypeTaskDelegated, `{"Child_Task_ID":"tsk_2"}`), `unknown object member name "Child_Task_ID"`, ""},
		{"a name twice", ev(ledger.TypeTaskDelegated, `{"child_task_id":"tsk_2","child_task_id":"tsk_3"}`), "duplicate", ""},
		{"a value of the wrong kind", ev(ledger.TypeApprovalRequested, `{"approval_id":"apr_1","approvals_required":"2"}`), "approvals_required", "approvals_required"},
		{"a bad time", ev(ledger.TypeTaskActivated, `{"ttl":"1m0s","expires_at":"tomorrow"}`), "expires_at", "tomorrow"},
		{"inside a list", ev(ledger.TypeToolsHidden, `{"listed":1,"hidden":[{"tool":"a","decision_id":"","policy_ids":[],"why":"x"}]}`), `"why"`, ""},
		{"inside obligations", ev(ledger.TypePolicyDecided, `{"point":"task","obligations":{"max_ttl":60}}`), `"max_ttl"`, ""},
		{"an import type", ev("import.siem.alert", `{"a":1}`), "not an event type writ writes", "not an event type writ writes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := event.Decode(tt.e)
			if tt.decode == "" && err != nil || tt.decode != "" && (err == nil || !strings.Contains(err.Error(), tt.decode)) {
				t.Errorf("Decode: %v, want an error with %q", err, tt.decode)
			}
			_, err = event.Read(tt.e)
			if tt.read == "" && err != nil || tt.read != "" && (err == nil || !strings.Contains(err.Error(), tt.read)) {
				t.Errorf("Read: %v, want an error with %q", err, tt.read)
			}
		})
	}
	if _, err := event.Decode(ev("import.x", `{}`)); !errors.Is(err, event.ErrUnknownType) {
		t.Errorf("Decode of an import type: %v, want ErrUnknownType", err)
	}
}

// TestReadKeepsWhatFits: data that does not fit its type is read as far as
// it goes, so that a reader can still show the event.
func TestReadKeepsWhatFits(t *testing.T) {
	d, err := event.Read(ev(ledger.TypeApprovalRequested, `{"approval_id":"apr_1","approvals_required":"2","kind":"task","extra":true}`))
	got, ok := d.(event.ApprovalRequested)
	if err == nil || !ok || got.ApprovalID != "apr_1" || got.Kind != "task" {
		t.Errorf("Read = %#v, %v; want the members that fit, and an error", d, err)
	}
	if d, err := event.Read(ev("import.x", `{}`)); d != nil || !errors.Is(err, event.ErrUnknownType) {
		t.Errorf("Read of an import type = %#v, %v", d, err)
	}
}

// TestRejectionShapes: auth.rejected data decodes as the shape its members
// say.
func TestRejectionShapes(t *testing.T) {
	for _, tt := range []struct {
		data string
		want reflect.Type
	}{
		{`{"reason":"task_not_active","detail":"task tsk_1 is revoked"}`, reflect.TypeFor[event.AuthRejected]()},
		{`{"reason":"self_approval","detail":"no","approval_id":"apr_1"}`, reflect.TypeFor[event.AuthRejected]()},
		{`{"reason":"malformed_token","detail":"x","subject_verified":false,"method":"GET","path":"/v1/tasks"}`, reflect.TypeFor[event.RequestRejected]()},
		{`{"reason":"summary","detail":"3 refused","source":"192.0.2.1","count":3,"recorded":1,"first":"2026-01-01T00:00:00Z","last":"2026-01-01T00:00:01Z","reasons":{"bad_signature":3},"interval":"1m0s"}`, reflect.TypeFor[event.RejectionSummary]()},
	} {
		d, err := event.Decode(ev(ledger.TypeAuthRejected, tt.data))
		if err != nil || reflect.TypeOf(d) != tt.want {
			t.Errorf("%s: %T, %v; want %v", tt.data, d, err, tt.want)
			continue
		}
		if err := sameData(canonical(t, tt.data), d); err != nil {
			t.Errorf("%s: %v", tt.data, err)
		}
		if reason, _ := d.(event.Rejection).Refusal(); reason == "" {
			t.Errorf("%s: no reason", tt.data)
		}
	}
}

// TestEarlierVersionsData: data as earlier versions of writ wrote it, with
// the plain digests keyed ones replaced, still decodes and encodes back to
// the same bytes.
func TestEarlierVersionsData(t *testing.T) {
	for _, e := range []ledger.Event{
		ev(ledger.TypeActionAuthorized, `{"action_id":"act_1","tool":"invoices.read","operation":"read","resource":"erp://invoices/2026-Q3/1","data_class":"internal","args_digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","effect":"allow","obligations":{"record_output":true},"policy_ids":["action-allow"]}`),
		ev(ledger.TypeActionCompleted, `{"action_id":"act_1","status":"ok","output_digest":"sha256:74234e98afe7498fb5daf1f36ac2d78acc339464f950703b8c019892f982b90b","output_recorded":true}`),
		ev(ledger.TypeApprovalRequested, `{"approval_id":"apr_1","kind":"step_up","approvals_required":1,"expires_at":"2026-11-25T22:00:00.5Z","reasons":["resource is outside the task scope"],"tool":"invoices.read","args_digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}`),
		ev(ledger.TypeApprovalGranted, `{"approval_id":"apr_1","kind":"step_up","approver":"oidc:test#bob","expires_at":"2026-11-25T22:00:00.5Z","tool":"invoices.read","args_digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}`),
	} {
		e.Data = canonical(t, string(e.Data))
		d, err := event.Decode(e)
		if err != nil {
			t.Errorf("%s: %v", e.Type, err)
			continue
		}
		if err := sameData(e.Data, d); err != nil {
			t.Errorf("%s: %v", e.Type, err)
		}
	}
}

func canonical(t *testing.T, s string) json.RawMessage {
	t.Helper()
	c, err := jcs.Canonicalize([]byte(s))
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return c
}

// FuzzDecode: no data makes Decode or Read panic, and what Decode accepts
// decodes to the same value once encoded again.
func FuzzDecode(f *testing.F) {
	f.Add(ledger.TypeTaskRequested, `{"scope":{"tools":["a"]},"scope_hash":"sha256:00","ttl":"1m0s","environment":"dev"}`)
	f.Add(ledger.TypeAuthRejected, `{"reason":"summary","count":1,"reasons":{"x":1}}`)
	f.Add(ledger.TypeActionAuthorized, `{"action_id":"act_1","obligations":{"record_output":false,"redact":["arguments.a"]}}`)
	f.Add(ledger.TypeToolsHidden, `{"listed":2,"hidden":[{"tool":"a","policy_ids":null}]}`)
	f.Add(ledger.TypeBodyErased, `{"index":3,"name":"output","commitment":"sha256:00","reason":"r"}`)
	f.Fuzz(func(t *testing.T, typ, data string) {
		e := ev(typ, data)
		event.Read(e)
		d, err := event.Decode(e)
		if err != nil {
			return
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("%T: %v", d, err)
		}
		again, err := event.Decode(ledger.Event{Type: typ, Data: b})
		if err != nil {
			t.Fatalf("%s re-encoded as %s: %v", data, b, err)
		}
		if b2, _ := json.Marshal(again); string(b2) != string(b) {
			t.Fatalf("%s: %s, then %s", data, b, b2)
		}
	})
}

// FuzzReadAsEncodingJSON: Read decodes what encoding/json decodes, member
// for member, and fails where it fails, for every type writ writes. (What
// a failed decoding holds is for show, and may go further than
// encoding/json's.)
func FuzzReadAsEncodingJSON(f *testing.F) {
	f.Add(ledger.TypeActionAuthorized, `{"tool":"x","effect":5,"action_id":"a","Tool":"y"}`)
	f.Add(ledger.TypeActionDenied, `{"TOOL":"q","policy_ids":null,"reasons":"s","effect":"allow","obligations":{"approvals":"2"}}`)
	f.Add(ledger.TypeApprovalRequested, `{"approval_id":"apr_1","approvals_required":"2","kind":"task","extra":true}`)
	f.Add(ledger.TypeTaskRequested, `{"scope":{"tools":["a.*"],"max_calls":3},"ttl_seconds":60,"ttl":"1m"}`)
	f.Add(ledger.TypeAuthRejected, `{"reason":"summary","count":3,"first":"2026-01-01T00:00:00Z","reasons":{"bad_signature":3}}`)
	f.Add(ledger.TypeActionCompleted, `{"action_id":"act","status":"ok","output_recorded":true,"redacted":["a","a"],"status":"error"}`)
	f.Fuzz(func(t *testing.T, typ, data string) {
		got, err := event.Read(ev(typ, data))
		if errors.Is(err, event.ErrUnknownType) || data == "" {
			return // no data is the zero value, decoded by neither
		}
		want := reflect.New(reflect.TypeOf(got))
		werr := json.Unmarshal([]byte(data), want.Interface())
		if (err == nil) != (werr == nil) {
			t.Fatalf("Read: %v; encoding/json: %v", err, werr)
		}
		if w := want.Elem().Interface(); err == nil && !reflect.DeepEqual(got, w) {
			t.Fatalf("Read = %#v\nencoding/json = %#v", got, w)
		}
	})
}
