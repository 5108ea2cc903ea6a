package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/api"
)

func TestTraceRowOf(t *testing.T) {
	tests := []struct {
		name, leaf string
		want       traceRow
	}{
		{"hidden tools",
			`{"agent":"spiffe://x/a","data":{"hidden":[{"decision_id":"d","policy_ids":[],"tool":"crm.delete"}],"listed":3},"jti":"j1","policy_version":"sha256:0123456789abcdef","task_id":"tsk_1","time":"2026-11-25T21:00:00.000000000Z","type":"tools.hidden","v":1}`,
			traceRow{who: "spiffe://x/a", decision: "hidden", what: "crm.delete", result: "1 of 3 listed tools hidden", policy: "sha256:0123456789ab", cred: "j1"}},
		{"refused for binding",
			`{"agent":"spiffe://x/a","data":{"action_id":"","args_mac":"hmac-sha256:00","effect":"allow","obligations":{},"policy_ids":[],"refused":"binding_required","resource":"r://1","tool":"t.read"},"jti":"j1","task_id":"tsk_1","time":"2026-11-25T21:00:00.000000000Z","type":"action.denied","v":1}`,
			traceRow{who: "spiffe://x/a", decision: "deny (binding_required)", what: "t.read r://1", cred: "j1"}},
		{"refused at a limit",
			`{"agent":"spiffe://x/a","data":{"action_id":"","args_mac":"hmac-sha256:00","effect":"allow","limit":{"max":5,"name":"per_tool","task_id":"tsk_0","tool":"mail.*"},"obligations":{},"policy_ids":[],"refused":"limit_reached","resource":"mail://finance","tool":"mail.send"},"jti":"j1","task_id":"tsk_1","time":"2026-11-25T21:00:00.000000000Z","type":"action.denied","v":1}`,
			traceRow{who: "spiffe://x/a", decision: "deny (limit_reached)", what: "mail.send mail://finance", result: "limits.per_tool mail.* 5 reached (task tsk_0)", cred: "j1"}},
		{"task with limits",
			`{"agent":"spiffe://x/a","data":{"environment":"dev","scope":{"data_class":"internal","environments":["dev"],"limits":{"calls":10,"per_minute":3},"operations":["read"],"resources":["r://*"],"tools":["t.*"]},"scope_hash":"sha256:00","ttl":"15m0s"},"principal":"oidc:t#alice","task_id":"tsk_1","time":"2026-11-25T21:00:00.000000000Z","type":"task.requested","v":1}`,
			traceRow{who: "oidc:t#alice", what: "for spiffe://x/a", result: "limits calls 10, per_minute 3"}},
		{"approval",
			`{"data":{"approval_id":"apr_1","approver":"oidc:t#bob","kind":"task","reason":"ok"},"policy_version":"sha256:0123456789abcdef","principal":"oidc:t#alice","task_id":"tsk_1","time":"2026-11-25T21:00:00.000000000Z","type":"approval.granted","v":1}`,
			traceRow{who: "oidc:t#bob", decision: "granted", what: "task apr_1", result: "ok", policy: "sha256:0123456789ab"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := traceRowOf(api.TraceEvent{Index: 7, Event: []byte(tt.leaf), Verified: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct{ name, got, want string }{
				{"who", r.who, tt.want.who}, {"decision", r.decision, tt.want.decision}, {"what", r.what, tt.want.what},
				{"result", r.result, tt.want.result}, {"policy", r.policy, tt.want.policy}, {"credential", r.cred, tt.want.cred},
			} {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
				}
			}
			if r.verified != "✓" || r.index != "7" {
				t.Errorf("index %q verified %q", r.index, r.verified)
			}
		})
	}
	if _, err := traceRowOf(api.TraceEvent{Event: []byte(`{"type":"x"}`)}); err == nil {
		t.Error("a leaf that is not a writ event made a row")
	}
}

// TestPrintTraceWitnessed: a trace of a witnessed ledger says how many of
// its events the witnessed checkpoint covers, and by whom and when it was
// cosigned.
func TestPrintTraceWitnessed(t *testing.T) {
	leaf := `{"data":{"approval_id":"apr_1","approver":"oidc:t#bob","kind":"task","reason":"ok"},"principal":"oidc:t#alice","task_id":"tsk_1","time":"2026-11-25T21:00:00.000000000Z","type":"approval.granted","v":1}`
	at := time.Date(2026, 11, 25, 21, 0, 1, 0, time.UTC)
	tr := api.Trace{TaskID: "tsk_1", Tasks: []string{"tsk_1"}, CheckpointSize: 9,
		Events: []api.TraceEvent{{Index: 3, Event: []byte(leaf), Verified: true}, {Index: 8, Event: []byte(leaf), Verified: true}},
		Witnessed: &api.TraceWitnessed{CheckpointSize: 5, Quorum: 2, Events: 1, Cosignatures: []api.TraceCosignature{
			{Witness: "w1.example", Time: at}, {Witness: "w2.example", Time: at.Add(time.Second)}}}}
	var out strings.Builder
	if err := printTrace(IO{Stdout: &out}, tr); err != nil {
		t.Fatal(err)
	}
	want := "witnessed: 1/2 events are in the checkpoint of size 5, cosigned by 2 witnesses (quorum 2): w1.example at 2026-11-25T21:00:01Z, w2.example at 2026-11-25T21:00:02Z\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("trace lacks %q:\n%s", want, out.String())
	}
}
