package server_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/server"
	"github.com/writhq/writ/internal/server/servertest"
	"github.com/writhq/writ/internal/task"
)

// startTaskServer starts a dev server enforcing for environment and returns
// it with tokens for distinct humans.
func startTaskServer(t *testing.T, environment string) (*testServer, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	ts := serve(t, servertest.Dev(dir, environment))
	tok := func(name string, roles ...identity.Role) string {
		s, err := identity.DevToken(dir, name, roles, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return ts, map[string]string{
		"alice":   tok("alice", identity.RoleRequester),
		"mallory": tok("mallory", identity.RoleRequester),
		"bob":     tok("bob", identity.RoleApprover),
		"auditor": tok("audrey", identity.RoleAuditor),
		"admin":   tok("root", identity.RoleAdmin),
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeAs[T any](t *testing.T, a answer) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("decoding %s: %v", a.body, err)
	}
	return v
}

func wantError(t *testing.T, a answer, status int, code string) {
	t.Helper()
	e := decodeAs[api.Error](t, a)
	if a.status != status || e.Error != code || e.Detail == "" {
		t.Errorf("answer %d %s, want %d with error %q", a.status, a.body, status, code)
	}
}

func TestTaskAPI(t *testing.T) {
	ts, tok := startTaskServer(t, "prod")
	open := api.OpenTask{Agent: "spiffe://example.org/agent/summarizer", Intent: "Summarize Q3 invoices",
		Scope: invoiceScope("prod"), TTL: "15m"}

	a := do(t, "POST", ts.url+"/v1/tasks", tok["alice"], mustJSON(t, open))
	if a.status != http.StatusCreated {
		t.Fatalf("open: %d %s", a.status, a.body)
	}
	opened := decodeAs[api.TaskOpened](t, a)
	if opened.State != api.StatePendingApproval || opened.ApprovalsRequired != 1 {
		t.Fatalf("opened %+v", opened)
	}
	taskURL := ts.url + "/v1/tasks/" + opened.TaskID

	// Roles and input are checked.
	if a := do(t, "POST", ts.url+"/v1/tasks", tok["bob"], mustJSON(t, open)); a.status != http.StatusForbidden {
		t.Errorf("approver opens a task: %d", a.status)
	}
	wantError(t, do(t, "POST", ts.url+"/v1/tasks", tok["alice"], []byte(`{"agent": 7}`)), http.StatusBadRequest, "invalid_request")
	wantError(t, do(t, "POST", ts.url+"/v1/tasks", tok["alice"], mustJSON(t, api.OpenTask{Agent: "a", Intent: "x"})), http.StatusBadRequest, "invalid_request")
	wantError(t, do(t, "GET", ts.url+"/v1/tasks/tsk_nope", tok["auditor"], nil), http.StatusNotFound, "not_found")
	wantError(t, do(t, "GET", ts.url+"/v1/tasks?state=sleeping", tok["auditor"], nil), http.StatusBadRequest, "invalid_request")

	// The approver sees it pending; approves; the task is active.
	pend := decodeAs[api.PendingApprovals](t, do(t, "GET", ts.url+"/v1/approvals", tok["bob"], nil))
	if len(pend.Approvals) != 1 || pend.Approvals[0].TaskID != opened.TaskID || pend.Approvals[0].Intent != open.Intent {
		t.Fatalf("pending approvals %+v", pend)
	}
	d := do(t, "POST", taskURL+"/approvals", tok["bob"], mustJSON(t, api.Decide{Decision: "approve", Reason: "ok"}))
	if got := decodeAs[api.Decided](t, d); d.status != http.StatusOK || got.State != api.StateActive {
		t.Fatalf("approve: %d %s", d.status, d.body)
	}
	wantError(t, do(t, "POST", taskURL+"/approvals", tok["bob"], mustJSON(t, api.Decide{Decision: "approve"})), http.StatusConflict, "approval_not_pending")

	list := decodeAs[api.TaskList](t, do(t, "GET", ts.url+"/v1/tasks?state=active", tok["auditor"], nil))
	if len(list.Tasks) != 1 || list.Tasks[0].TaskID != opened.TaskID || len(list.Tasks[0].Approvals) != 1 {
		t.Errorf("active tasks %+v", list)
	}

	// Only the requester (or an admin) ends it; trace for requester and
	// auditor only. To another requester the task does not exist.
	wantError(t, do(t, "POST", taskURL+"/complete", tok["mallory"], nil), http.StatusNotFound, "not_found")
	wantError(t, do(t, "GET", taskURL+"/trace", tok["mallory"], nil), http.StatusNotFound, "not_found")
	if a := do(t, "POST", taskURL+"/complete", tok["alice"], nil); a.status != http.StatusOK || decodeAs[api.Task](t, a).State != api.StateCompleted {
		t.Fatalf("complete: %d %s", a.status, a.body)
	}
	tr := decodeAs[api.Trace](t, do(t, "GET", taskURL+"/trace", tok["auditor"], nil))
	if len(tr.Events) != 6 {
		t.Fatalf("trace has %d events, want 6: %+v", len(tr.Events), tr.Events)
	}
	for _, ev := range tr.Events {
		if ev.Index < tr.CheckpointSize && !ev.Verified {
			t.Errorf("event %d not verified against the checkpoint of size %d", ev.Index, tr.CheckpointSize)
		}
	}
	if !tr.Events[0].Verified {
		t.Error("the first event is not verified")
	}
}

func TestSelfApprovalForbidden(t *testing.T) {
	ts, tok := startTaskServer(t, "prod")
	// A human holding both roles still may not approve their own task.
	both, err := identity.DevToken(ts.dir, "eve", []identity.Role{identity.RoleRequester, identity.RoleApprover}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	open := api.OpenTask{Agent: "spiffe://example.org/agent/a", Intent: "x",
		Scope: api.Scope{Tools: []string{"t"}, Resources: []string{"r"}, Operations: []string{"read"}, DataClass: "confidential", Environments: []string{"prod"}}}
	opened := decodeAs[api.TaskOpened](t, do(t, "POST", ts.url+"/v1/tasks", both, mustJSON(t, open)))
	wantError(t, do(t, "POST", ts.url+"/v1/tasks/"+opened.TaskID+"/approvals", both, mustJSON(t, api.Decide{Decision: "approve"})), http.StatusForbidden, "self_approval")
	tr := decodeAs[api.Trace](t, do(t, "GET", ts.url+"/v1/tasks/"+opened.TaskID+"/trace", tok["auditor"], nil))
	var last struct {
		Type string `json:"type"`
	}
	json.Unmarshal(tr.Events[len(tr.Events)-1].Event, &last)
	if last.Type != "auth.rejected" {
		t.Errorf("last event %q, want the recorded refusal", last.Type)
	}
}

// TestSnapshotInterval: task_snapshot_interval 0 takes a snapshot at a
// graceful stop only, the default every million events, and the rest
// pass as they are.
func TestSnapshotInterval(t *testing.T) {
	for in, want := range map[int]int{0: task.SnapshotAtClose, -1: -1, 5000: 5000, config.Default().TaskSnapshotInterval: 1_000_000} {
		if got := server.SnapshotInterval(in); got != want {
			t.Errorf("task_snapshot_interval %d: the task service is given %d, want %d", in, got, want)
		}
	}
}
