package server_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/identity"
)

// listed returns the IDs GET /v1/tasks lists for token.
func listed(t *testing.T, ts *testServer, token string) []string {
	t.Helper()
	var ids []string
	for _, tk := range decodeAs[api.TaskList](t, do(t, "GET", ts.url+"/v1/tasks", token, nil)).Tasks {
		ids = append(ids, tk.TaskID)
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids ...string) []string { slices.Sort(ids); return ids }

// TestRequestersSeeOnlyTheirTasks: a requester lists, reads, traces,
// exports and ends only their own tasks, and opens child tasks only under
// them; another's task is not found, exactly as an unknown one. Approvers
// see what they may decide (or decided); auditors and admins see all.
func TestRequestersSeeOnlyTheirTasks(t *testing.T) {
	ts, tok := startTaskServer(t, "prod")
	carol := devTokenFor(t, ts, "carol", identity.RoleRequester)
	dana := devTokenFor(t, ts, "dana", identity.RoleApprover)
	// A requester who is also an auditor sees every task, but still opens
	// children only under their own.
	rita := devTokenFor(t, ts, "rita", identity.RoleRequester, identity.RoleAuditor)
	mine := openTask(t, ts, tok["alice"], agentA, invoiceScope("prod"), nil)
	theirs := openTask(t, ts, carol, agentB, invoiceScope("prod"), nil)
	if mine.State != api.StatePendingApproval || theirs.State != api.StatePendingApproval {
		t.Fatalf("states %s, %s; want both pending", mine.State, theirs.State)
	}

	if got, want := listed(t, ts, tok["alice"]), sorted(mine.TaskID); !slices.Equal(got, want) {
		t.Errorf("alice lists %v, want %v", got, want)
	}
	if got, want := listed(t, ts, carol), sorted(theirs.TaskID); !slices.Equal(got, want) {
		t.Errorf("carol lists %v, want %v", got, want)
	}
	for _, who := range []string{"auditor", "admin"} {
		if got, want := listed(t, ts, tok[who]), sorted(mine.TaskID, theirs.TaskID); !slices.Equal(got, want) {
			t.Errorf("%s lists %v, want %v", who, got, want)
		}
	}
	// Both tasks wait for an approver: bob and dana see both. Once bob
	// approves alice's task, dana has nothing left to decide on it.
	if got, want := listed(t, ts, dana), sorted(mine.TaskID, theirs.TaskID); !slices.Equal(got, want) {
		t.Errorf("dana lists %v before any decision, want %v", got, want)
	}
	if d := do(t, "POST", ts.url+"/v1/tasks/"+mine.TaskID+"/approvals", tok["bob"], mustJSON(t, api.Decide{Decision: "approve"})); d.status != http.StatusOK {
		t.Fatalf("approve: %d %s", d.status, d.body)
	}
	if got, want := listed(t, ts, tok["bob"]), sorted(mine.TaskID, theirs.TaskID); !slices.Equal(got, want) {
		t.Errorf("bob lists %v, want %v (one decided, one to decide)", got, want)
	}
	if got, want := listed(t, ts, dana), sorted(theirs.TaskID); !slices.Equal(got, want) {
		t.Errorf("dana lists %v after bob's approval, want %v", got, want)
	}
	if a := do(t, "GET", ts.url+"/v1/tasks/"+mine.TaskID, dana, nil); a.status != http.StatusNotFound {
		t.Errorf("dana reads a task she cannot decide: %d, want 404", a.status)
	}

	// Carol, on alice's task: every read and lifecycle call answers as for
	// a task that does not exist.
	unknown := do(t, "GET", ts.url+"/v1/tasks/tsk_doesnotexist", carol, nil)
	wantError(t, unknown, http.StatusNotFound, "not_found")
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/tasks/" + mine.TaskID},
		{"GET", "/v1/tasks/" + mine.TaskID + "/trace"},
		{"GET", "/v1/tasks/" + mine.TaskID + "/evidence"},
		{"POST", "/v1/tasks/" + mine.TaskID + "/complete"},
		{"POST", "/v1/tasks/" + mine.TaskID + "/revoke"},
	} {
		a := do(t, c.method, ts.url+c.path, carol, nil)
		wantError(t, a, http.StatusNotFound, "not_found")
	}
	// An approver who sees the task (and is a requester too) but may not
	// trace it is told so.
	vera := devTokenFor(t, ts, "vera", identity.RoleRequester, identity.RoleApprover)
	wantError(t, do(t, "GET", ts.url+"/v1/tasks/"+theirs.TaskID+"/trace", vera, nil), http.StatusForbidden, "forbidden")

	// Children: carol cannot open one under alice's task (as if it did not
	// exist); rita, who sees it, is refused as not its requester; alice can.
	parent := mine.TaskID
	child := mustJSON(t, api.OpenTask{Agent: agentB, Intent: "Read one invoice", TTL: "5m", Parent: &parent, Scope: invoiceScope("prod")})
	nowhere := "tsk_doesnotexist"
	a, b := do(t, "POST", ts.url+"/v1/tasks", carol, child),
		do(t, "POST", ts.url+"/v1/tasks", carol, mustJSON(t, api.OpenTask{Agent: agentB, Intent: "Read one invoice", TTL: "5m", Parent: &nowhere, Scope: invoiceScope("prod")}))
	wantError(t, a, http.StatusBadRequest, "invalid_request")
	if ea, eb := decodeAs[api.Error](t, a).Detail, decodeAs[api.Error](t, b).Detail; ea != "parent task "+mine.TaskID+" does not exist" || eb != "parent task "+nowhere+" does not exist" {
		t.Errorf("carol's child of alice's task: %q; of no task: %q", ea, eb)
	}
	wantError(t, do(t, "POST", ts.url+"/v1/tasks", rita, child), http.StatusForbidden, "not_requester")
	if a := do(t, "POST", ts.url+"/v1/tasks", tok["alice"], child); a.status != http.StatusCreated {
		t.Errorf("alice's child task: %d %s", a.status, a.body)
	}
	// Nothing carol did reached alice's task.
	if v := decodeAs[api.Task](t, do(t, "GET", ts.url+"/v1/tasks/"+mine.TaskID, tok["alice"], nil)); v.State != api.StateActive || len(v.Children) != 1 {
		t.Errorf("alice's task: %s with %d children, want active with 1", v.State, len(v.Children))
	}
}
