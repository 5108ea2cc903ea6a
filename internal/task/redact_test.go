package task_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/redact"
	"github.com/writhq/writ/internal/task"
)

// secretArgs hold secrets at depth, in arrays, under case variants and in
// a value whose key says nothing.
var (
	ghToken    = "ghp_" + strings.Repeat("Zq9", 12)
	secretArgs = `{"nested":{"password":"hunter2"},"api_key":"k-123","list":[{"token":"t-1"}],"Password":"P","note":"` + ghToken + `","id":7}`
	secretVals = []string{"hunter2", "k-123", "t-1", `"P"`, ghToken, "s3cr3t-out", "o-tok"}
)

// TestRedactionDefaults: without any obligation, the default keys and
// detectors keep every secret out of the arguments body, the recorded
// policy input, a step-up's approval.requested body and what approvers
// are shown, and the output body; the events name the paths.
func TestRedactionDefaults(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	out := e.openTask(alice, scope("internal", "dev"), nil)
	cred := e.credential(out.TaskID)

	a, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/17", secretArgs), task.Request{})
	if err != nil || !a.Allow {
		t.Fatalf("Authorize: %+v %v", a, err)
	}
	entry, args := lastEvent(t, e, "arguments")
	want := `{"Password":"[redacted]","api_key":"[redacted]","id":7,"list":[{"token":"[redacted]"}],"nested":{"password":"[redacted]"},"note":"[redacted]"}`
	if diff := cmp.Diff(want, string(args)); diff != "" {
		t.Errorf("arguments body (-want +got):\n%s", diff)
	}
	var data struct {
		Redacted []string `json:"redacted"`
	}
	json.Unmarshal(entry.Event.Data, &data)
	wantPaths := []string{"arguments.Password", "arguments.api_key", "arguments.list[0].token", "arguments.nested.password", "arguments.note"}
	if diff := cmp.Diff(wantPaths, data.Redacted); diff != "" {
		t.Errorf("redacted paths (-want +got):\n%s", diff)
	}
	_, input := lastEvent(t, e, "input")
	noSecrets(t, "input body", input)
	noSecrets(t, "action.authorized data", entry.Event.Data)

	output := `{"rows":[{"Secret":"s3cr3t-out"}],"text":"Authorization: Bearer o-tok` + strings.Repeat("x", 20) + `"}`
	if _, err := e.svc.RecordResult(ctx, cred, a.ActionID, api.ActionResult{Status: "ok", Output: json.RawMessage(output)}); err != nil {
		t.Fatal(err)
	}
	done, body := lastEvent(t, e, "output")
	if wantOut := `{"rows":[{"Secret":"[redacted]"}],"text":"Authorization: [redacted]"}`; string(body) != wantOut {
		t.Errorf("output body %s, want %s", body, wantOut)
	}
	json.Unmarshal(done.Event.Data, &data)
	if diff := cmp.Diff([]string{"output.rows[0].Secret", "output.text"}, data.Redacted); diff != "" {
		t.Errorf("output paths (-want +got):\n%s", diff)
	}

	// A step-up for the same secrets: its record and what approvers see.
	s, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2025-Q4/3", secretArgs), task.Request{})
	if err != nil || !s.ApprovalRequired {
		t.Fatalf("step-up: %+v %v", s, err)
	}
	req, body := lastEvent(t, e, "arguments")
	if req.Event.Type != ledger.TypeApprovalRequested || string(body) != want {
		t.Errorf("%s arguments %s", req.Event.Type, body)
	}
	pend := e.svc.ListPendingApprovals(bob.ID)
	if len(pend) != 1 {
		t.Fatalf("%d pending", len(pend))
	}
	shown, _ := json.Marshal(pend[0])
	noSecrets(t, "pending approval", shown)
}

func noSecrets(t *testing.T, what string, b []byte) {
	t.Helper()
	for _, s := range secretVals {
		if strings.Contains(string(b), s) {
			t.Errorf("%s holds %q: %s", what, s, b)
		}
	}
}

// TestRedactionConfigured: the operator's keys and paths apply beside the
// defaults and a policy's obligations.
func TestRedactionConfigured(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	eng, err := redact.New(redact.Config{Keys: []string{"ssn"}, Paths: []string{"output.**.iban"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.reopen(task.Config{Redactor: eng}); err != nil {
		t.Fatal(err)
	}
	out := e.openTask(alice, scope("internal", "dev"), nil)
	cred := e.credential(out.TaskID)
	a, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/17", `{"person":{"SSN":"078-05-1120"},"iban":"DE1"}`), task.Request{})
	if err != nil || !a.Allow {
		t.Fatalf("Authorize: %+v %v", a, err)
	}
	if _, body := lastEvent(t, e, "arguments"); string(body) != `{"iban":"DE1","person":{"SSN":"[redacted]"}}` {
		t.Errorf("arguments %s", body)
	}
	if _, err := e.svc.RecordResult(ctx, cred, a.ActionID, api.ActionResult{Status: "ok", Output: json.RawMessage(`{"acct":{"iban":"DE2"}}`)}); err != nil {
		t.Fatal(err)
	}
	if _, body := lastEvent(t, e, "output"); string(body) != `{"acct":{"iban":"[redacted]"}}` {
		t.Errorf("output %s", body)
	}
}

// TestRecordedInputArguments: the recorded policy input holds the
// arguments the policy decided on, as decoded, when nothing in them is
// redacted, and their redacted form when something is.
func TestRecordedInputArguments(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	out := e.openTask(alice, scope("internal", "dev"), nil)
	cred := e.credential(out.TaskID)
	for _, c := range []struct{ args, want string }{
		{`{"n":1.50,"s":"a<b","nested":{"z":[1e2,null,true]}}`, `{"n":1.5,"nested":{"z":[100,null,true]},"s":"a\u003cb"}`},
		{`{"id":7,"password":"hunter2"}`, `{"id":7,"password":"[redacted]"}`},
	} {
		if a, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/17", c.args), task.Request{}); err != nil || !a.Allow {
			t.Fatalf("Authorize(%s): %+v %v", c.args, a, err)
		}
		_, input := lastEvent(t, e, "input")
		var doc struct {
			Action struct {
				Arguments json.RawMessage `json:"arguments"`
			} `json:"action"`
		}
		if err := json.Unmarshal(input, &doc); err != nil {
			t.Fatal(err)
		}
		if got := string(doc.Action.Arguments); got != c.want {
			t.Errorf("%s: recorded arguments %s, want %s", c.args, got, c.want)
		}
	}
}
