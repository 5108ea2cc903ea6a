package task_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/task"
)

// TestLateResultsReadTheirAction: the state keeps the details of its
// latest actions only; a result for an older one, or for one authorized
// before a start from the snapshot, reads them back from its
// action.authorized, and is recorded just as a prompt one: against its
// decision, its output redacted by its obligation's paths or, when the
// policy keeps no output, only its keyed digest.
func TestLateResultsReadTheirAction(t *testing.T) {
	defer task.SetDetailsKept(1)()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		edit func(string) string
		// check checks the action.completed of output.
		check func(t *testing.T, done ledger.Entry, body []byte)
	}{
		{"redacted", func(src string) string {
			return strings.Replace(src, `"arguments.token"]`, `"arguments.token", "output.secret"]`, 1)
		}, func(t *testing.T, done ledger.Entry, body []byte) {
			if string(body) != `{"n":1,"secret":"[redacted]"}` {
				t.Errorf("output body %s", body)
			}
		}},
		{"not recorded", func(src string) string {
			return strings.Replace(src, `"record_output": true`, `"record_output": false`, 1)
		}, func(t *testing.T, done ledger.Entry, body []byte) {
			var d map[string]any
			json.Unmarshal(done.Event.Data, &d)
			if mac, _ := d["output_mac"].(string); !strings.HasPrefix(mac, task.MACPrefix) || body != nil {
				t.Errorf("action.completed %s, body %q: want output_mac only", done.Event.Data, body)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, pol := packCopy(t, tc.edit)
			e := newEnvPolicy(t, "dev", pol)
			out := e.openTask(alice, scope("internal", "dev"), nil)
			cred := e.credential(out.TaskID)
			decisions := map[string]string{}
			var ids []string
			for range 4 {
				a, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/17", `{}`), task.Request{Gateway: policy.GatewayAPI})
				if err != nil || !a.Allow {
					t.Fatalf("authorize: %+v %v", a, err)
				}
				ids = append(ids, a.ActionID)
				decisions[a.ActionID] = a.DecisionID
			}
			result := func(id string) {
				t.Helper()
				if _, err := e.svc.RecordResult(ctx, cred, id, api.ActionResult{Status: "ok", Output: json.RawMessage(`{"secret":"s3cr3t-late","n":1}`)}); err != nil {
					t.Fatalf("result of %s: %v", id, err)
				}
				done, _ := lastEvent(t, e, "")
				var body []byte
				if len(done.Commitments) > 0 {
					_, body = lastEvent(t, e, "output")
				}
				if done.Event.Type != ledger.TypeActionCompleted || done.Event.DecisionID != decisions[id] {
					t.Errorf("result of %s recorded as %s of decision %s, want decision %s", id, done.Event.Type, done.Event.DecisionID, decisions[id])
				}
				tc.check(t, done, body)
			}
			result(ids[0]) // out of the details kept
			result(ids[3]) // the latest
			if err := e.reopen(task.Config{}); err != nil {
				t.Fatal(err)
			}
			if err := e.reopen(task.Config{}); err != nil { // from the snapshot the first wrote
				t.Fatal(err)
			}
			if got := task.ActionsHeld(e.svc); got != 2 {
				t.Fatalf("after a restart the state holds %d actions in flight, want 2", got)
			}
			result(ids[1])
			result(ids[2])
			if got := task.ActionsHeld(e.svc); got != 0 {
				t.Errorf("after every result the state holds %d actions, want 0", got)
			}
			h, ok := e.svc.History(out.TaskID, "invoices.read", "read", "erp://invoices/2026-Q3/17")
			if !ok || h.Task.Calls.Allowed != 4 || h.Task.Calls.InFlight != 0 || h.Tool.InFlight != 0 {
				t.Errorf("history %+v, tool %+v: want 4 allowed and none in flight", h.Task.Calls, h.Tool)
			}
		})
	}
}
