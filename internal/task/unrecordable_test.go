package task_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/internal/jcs"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/task"
)

// TestUnrecordableCallDenied: a call whose evidence record cannot be built
// in full (its arguments cannot be redacted, its policy input cannot be
// encoded) is denied, and the denial recorded without the parts that could
// not be built; never allowed with a partial record, never an error that
// leaves no record.
func TestUnrecordableCallDenied(t *testing.T) {
	ctx := context.Background()
	// Nested as deep as canonical JSON takes, which is one level deeper
	// than redaction walks.
	deep := strings.Repeat(`{"a":`, jcs.MaxDepth) + `1` + strings.Repeat(`}`, jcs.MaxDepth)
	for _, tt := range []struct {
		name string
		args string
		cred func(task.VerifiedCredential) task.VerifiedCredential
	}{
		{"arguments redaction cannot walk", deep, nil},
		{"an input document that does not encode", `{"id": 17}`, func(c task.VerifiedCredential) task.VerifiedCredential {
			// A time JSON cannot hold (RFC 3339 years end at 9999).
			c.Expiry = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
			return c
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "dev")
			cred := e.credential(e.openTask(alice, scope("internal", "dev"), nil).TaskID)
			if tt.cred != nil {
				cred = tt.cred(cred)
			}
			a, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/17", tt.args), task.Request{Gateway: policy.GatewayAPI})
			if err != nil || a.Allow || a.ActionID != "" || len(a.Reasons) != 1 || a.Reasons[0] != task.ReasonUnrecordable {
				t.Fatalf("Authorize: %+v, %v; want a deny for an unrecordable call", a, err)
			}
			entry, _ := lastEvent(t, e, "")
			var data struct {
				Refused string `json:"refused"`
				Effect  string `json:"effect"`
			}
			json.Unmarshal(entry.Event.Data, &data)
			if entry.Event.Type != ledger.TypeActionDenied || data.Refused != task.RefusedUnrecordable || entry.Event.DecisionID != a.DecisionID {
				t.Errorf("recorded %s %s; want action.denied refused %q under decision %s", entry.Event.Type, entry.Event.Data, task.RefusedUnrecordable, a.DecisionID)
			}
			if len(entry.Event.Bodies) != 0 {
				t.Errorf("the denial records bodies %v that could not be built in full", bodyNames(entry.Event.Bodies))
			}

			// The ledger down: the denial cannot be recorded either, and
			// the caller gets an error (a 503), not an answer.
			e.store.fail.Store(true)
			if a, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/17", tt.args), task.Request{Gateway: policy.GatewayAPI}); err == nil || a.Allow {
				t.Errorf("with the ledger down: %+v, %v; want an error", a, err)
			}
		})
	}
}

func bodyNames(b map[string][]byte) []string {
	var out []string
	for k := range b {
		out = append(out, k)
	}
	return out
}

// TestStepUpCallRecordedWhole: a require_approval answer records the
// denial with the step-up approval it asked for, and a retry while it is
// pending reuses that approval.
func TestStepUpCallRecordedWhole(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	cred := e.credential(e.openTask(alice, scope("internal", "dev"), nil).TaskID)
	c := stepUpCall("read", "erp://invoices/2026-Q2/9", `{"id": 9}`, "internal")
	first, err := e.svc.Authorize(ctx, cred, c, task.Request{})
	if err != nil || !first.ApprovalRequired || first.ApprovalID == "" {
		t.Fatalf("first: %+v, %v", first, err)
	}
	again, err := e.svc.Authorize(ctx, cred, c, task.Request{})
	if err != nil || again.ApprovalID != first.ApprovalID {
		t.Fatalf("retry: %+v, %v; want approval %s again", again, err, first.ApprovalID)
	}
	entry, _ := lastEvent(t, e, "")
	var data struct {
		ApprovalID string `json:"approval_id"`
		ArgsMAC    string `json:"args_mac"`
	}
	if err := json.Unmarshal(entry.Event.Data, &data); err != nil || entry.Event.Type != ledger.TypeActionDenied ||
		data.ApprovalID != first.ApprovalID || !strings.HasPrefix(data.ArgsMAC, task.MACPrefix) {
		t.Errorf("recorded %s %s; want action.denied naming approval %s", entry.Event.Type, entry.Event.Data, first.ApprovalID)
	}
	if pend := e.svc.ListPendingApprovals(bob.ID); len(pend) != 1 || pend[0].ApprovalID != first.ApprovalID {
		t.Errorf("pending approvals %+v; want only %s", pend, first.ApprovalID)
	}
}
