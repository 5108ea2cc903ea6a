package task_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/credential"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/task"
)

// withIssuer reopens e's service with a real credential issuer on e's
// clock and returns the issuer.
func withIssuer(t *testing.T, e *env, ttl time.Duration) *credential.Issuer {
	t.Helper()
	iss, err := credential.NewIssuer(t.TempDir(), credential.IssuerOptions{Issuer: "https://writ.test", Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.reopen(task.Config{Issuer: iss, CredentialTTL: ttl}); err != nil {
		t.Fatal(err)
	}
	return iss
}

func agentPrincipal(id string) identity.Principal {
	return identity.Principal{Kind: identity.KindAgent, ID: id, Issuer: "spiffe://example.org"}
}

var tokenPoint = task.Request{Gateway: policy.GatewayToken, Source: "192.0.2.7"}

// rejected returns the reason of the newest auth.rejected event.
func rejected(t *testing.T, e *env) string {
	t.Helper()
	entry, _ := lastEvent(t, e, "")
	if entry.Event.Type != ledger.TypeAuthRejected {
		t.Fatalf("newest event is %s, want auth.rejected", entry.Event.Type)
	}
	var d struct{ Reason string }
	json.Unmarshal(entry.Event.Data, &d)
	return d.Reason
}

func TestExchangeIssuesAndRecords(t *testing.T) {
	e := newEnv(t, "dev")
	iss := withIssuer(t, e, 10*time.Minute)
	ctx := context.Background()
	opened := e.openTask(alice, scope("internal", "dev"), nil)

	out, err := e.svc.Exchange(ctx, task.Exchange{Agent: agentPrincipal(agent), TaskID: opened.TaskID, Cnf: credential.Cnf{JKT: strings.Repeat("A", 43)}}, tokenPoint)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	tok, err := iss.Verify(ctx, out.Token, e.clk.Now())
	if err != nil {
		t.Fatalf("the issued token does not verify: %v", err)
	}
	// The task has 15m left and the credential TTL is 10m.
	if out.ExpiresIn != 10*time.Minute || out.Scope != "task:"+opened.TaskID || !out.DPoP || out.JTI != tok.JTI {
		t.Errorf("issued %+v; want 10m, scope task:%s, DPoP-bound, jti %s", out, opened.TaskID, tok.JTI)
	}
	if diff := cmp.Diff([]string{agent}, tok.Actors); diff != "" {
		t.Errorf("act chain (-want +got):\n%s", diff)
	}
	if !e.svc.CredentialLive(out.JTI) {
		t.Error("the issued credential is not live in the task state")
	}
	want := []string{ledger.TypeTaskRequested, ledger.TypePolicyDecided, ledger.TypeTaskActivated,
		ledger.TypePolicyDecided, ledger.TypeCredentialIssued}
	if diff := cmp.Diff(want, e.eventTypes(opened.TaskID)); diff != "" {
		t.Errorf("task events (-want +got):\n%s", diff)
	}
	// The decision was asked at point exchange, from the token endpoint,
	// and its input is recorded with it.
	_, input := lastDecision(t, e)
	var doc policy.Input
	if err := json.Unmarshal(input, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Point != policy.PointExchange || doc.Request.Gateway != policy.GatewayToken || doc.Credential.Binding != "dpop" || doc.Request.Source != "192.0.2.7" {
		t.Errorf("recorded input: point %s, gateway %q, binding %q, source %q", doc.Point, doc.Request.Gateway, doc.Credential.Binding, doc.Request.Source)
	}

	// A task with less than a credential TTL left caps the token's life.
	e.clk.Add(14*time.Minute + 30*time.Second)
	out, err = e.svc.Exchange(ctx, task.Exchange{Agent: agentPrincipal(agent), TaskID: opened.TaskID}, tokenPoint)
	if err != nil || out.ExpiresIn != 30*time.Second || out.DPoP {
		t.Errorf("near the task's end: %+v, %v; want a 30s bearer token", out, err)
	}
	e.clk.Add(29*time.Second + 500*time.Millisecond)
	_, err = e.svc.Exchange(ctx, task.Exchange{Agent: agentPrincipal(agent), TaskID: opened.TaskID}, tokenPoint)
	if r, ok := refusal.As(err); !ok || r.OAuth != credential.CodeInvalidGrant || r.Code != "task_expiring" {
		t.Errorf("half a second before the task's end: %v; want invalid_grant task_expiring", err)
	}
}

// lastDecision returns the newest policy.decided event and its input.
func lastDecision(t *testing.T, e *env) (ledger.Entry, []byte) {
	t.Helper()
	ctx := context.Background()
	size, err := e.store.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := size; i > 0; i-- {
		if entry := leafAt(t, e, i-1); entry.Event.Type == ledger.TypePolicyDecided {
			b, err := e.store.ReadBody(ctx, ledger.BodyRef{Index: i - 1, Name: "input"})
			if err != nil {
				t.Fatal(err)
			}
			return entry, b.Data
		}
	}
	t.Fatal("no policy.decided event")
	return ledger.Entry{}, nil
}

func TestExchangeRefusals(t *testing.T) {
	e := newEnv(t, "dev")
	withIssuer(t, e, 0)
	ctx := context.Background()
	opened := e.openTask(alice, scope("internal", "dev"), nil)
	ended := e.openTask(alice, scope("internal", "dev"), nil)
	if _, err := e.svc.Complete(ctx, alice, ended.TaskID); err != nil {
		t.Fatal(err)
	}
	child := e.openTask(alice, scope("internal", "dev"), &opened.TaskID)

	for _, tt := range []struct {
		name   string
		x      task.Exchange
		reason string
		is     error
	}{
		{"unknown task", task.Exchange{Agent: agentPrincipal(agent), TaskID: "tsk_nope"}, "unknown_task", task.ErrNotFound},
		{"another agent's task", task.Exchange{Agent: agentPrincipal("spiffe://example.org/agent/other"), TaskID: opened.TaskID}, "agent_mismatch", task.ErrForbidden},
		{"an ended task", task.Exchange{Agent: agentPrincipal(agent), TaskID: ended.TaskID}, "task_not_active", task.ErrConflict},
		{"a child task without delegation", task.Exchange{Agent: agentPrincipal(agent), TaskID: child.TaskID}, "delegation_required", task.ErrInvalid},
	} {
		_, err := e.svc.Exchange(ctx, tt.x, tokenPoint)
		r, ok := refusal.As(err)
		if !ok || r.Code != tt.reason || r.OAuth != credential.CodeInvalidGrant || !errors.Is(err, tt.is) {
			t.Errorf("%s: %v; want invalid_grant %s wrapping %v", tt.name, err, tt.reason, tt.is)
			continue
		}
		if got := rejected(t, e); got != tt.reason {
			t.Errorf("%s: recorded reason %q, want %q", tt.name, got, tt.reason)
		}
	}
}

func TestExchangeDelegation(t *testing.T) {
	e := newEnv(t, "dev")
	iss := withIssuer(t, e, 0)
	ctx := context.Background()
	const childAgent = "spiffe://example.org/agent/helper"
	parent := e.openTask(alice, scope("internal", "dev"), nil)
	narrow := api.Scope{Tools: []string{"invoices.read"}, Resources: []string{"erp://invoices/2026-Q3/*"},
		Operations: []string{"read"}, DataClass: "internal", Environments: []string{"dev"}}
	child, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: childAgent, Intent: "read one", Scope: narrow, TTL: "5m", Parent: &parent.TaskID})
	if err != nil || child.State != api.StateActive {
		t.Fatalf("opening the child: %+v, %v", child, err)
	}
	const res = "https://writ.test/mcp/erp"
	issued, err := e.svc.Exchange(ctx, task.Exchange{Agent: agentPrincipal(agent), TaskID: parent.TaskID, Resource: res}, tokenPoint)
	if err != nil {
		t.Fatal(err)
	}
	parentTok, err := iss.Verify(ctx, issued.Token, e.clk.Now())
	if err != nil {
		t.Fatal(err)
	}

	// A child token reaches no further than its parent's.
	_, err = e.svc.Exchange(ctx, task.Exchange{Agent: agentPrincipal(childAgent), TaskID: child.TaskID, Parent: parentTok, Resource: "https://writ.test/mcp/mail"}, tokenPoint)
	if r, ok := refusal.As(err); !ok || r.OAuth != credential.CodeInvalidTarget || rejected(t, e) != credential.CodeInvalidTarget {
		t.Errorf("a child asking for another resource: %v; want invalid_target, recorded", err)
	}
	// The parent's own task is not a child of itself.
	_, err = e.svc.Exchange(ctx, task.Exchange{Agent: agentPrincipal(agent), TaskID: parent.TaskID, Parent: parentTok}, tokenPoint)
	if r, ok := refusal.As(err); !ok || r.Code != "delegation_refused" || rejected(t, e) != "delegation_refused" {
		t.Errorf("delegating to a task that is not a child: %v; want delegation_refused, recorded", err)
	}

	out, err := e.svc.Exchange(ctx, task.Exchange{Agent: agentPrincipal(childAgent), TaskID: child.TaskID, Parent: parentTok}, tokenPoint)
	if err != nil {
		t.Fatalf("delegation: %v", err)
	}
	tok, err := iss.Verify(ctx, out.Token, e.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{childAgent, agent}, tok.Actors); diff != "" || tok.Resource != res || out.ExpiresIn != 5*time.Minute {
		t.Errorf("child token: act chain diff %s, resource %q, lifetime %s; want the parent's resource and the child task's 5m", diff, tok.Resource, out.ExpiresIn)
	}
	_, input := lastDecision(t, e)
	var doc policy.Input
	json.Unmarshal(input, &doc)
	if len(doc.Task.ParentChain) != 1 || doc.Task.ParentChain[0].ID != parent.TaskID {
		t.Errorf("policy saw parent chain %+v, want the parent", doc.Task.ParentChain)
	}
}

func TestExchangePolicyRefusals(t *testing.T) {
	ctx := context.Background()
	_, pol := packCopy(t, func(src string) string {
		return strings.Replace(src, `"exchange-ttl-dev", "obligations": {"max_ttl": 3600}`,
			`"exchange-ttl-dev", "obligations": {"max_ttl": 3600, "require_binding": true}`, 1)
	})
	e := newEnvPolicy(t, "dev", pol)
	withIssuer(t, e, 0)
	opened := e.openTask(alice, scope("internal", "dev"), nil)
	x := task.Exchange{Agent: agentPrincipal(agent), TaskID: opened.TaskID}

	// An unbound request is refused, and the decision recorded.
	_, err := e.svc.Exchange(ctx, x, tokenPoint)
	if r, ok := refusal.As(err); !ok || r.OAuth != credential.CodeInvalidRequest || r.Code != task.RefusedBindingRequired {
		t.Fatalf("unbound: %v; want invalid_request binding_required", err)
	}
	want := []string{ledger.TypeTaskRequested, ledger.TypePolicyDecided, ledger.TypeTaskActivated, ledger.TypePolicyDecided}
	if diff := cmp.Diff(want, e.eventTypes(opened.TaskID)); diff != "" {
		t.Errorf("task events (-want +got):\n%s", diff)
	}

	// A refusal the ledger cannot record is no refusal the caller may
	// act on: it is an error, and nothing is issued.
	e.store.fail.Store(true)
	_, err = e.svc.Exchange(ctx, x, tokenPoint)
	if _, ok := refusal.As(err); ok || err == nil {
		t.Errorf("unbound, with the ledger down: %v; want an error that is not a refusal", err)
	}
	x.Cnf = credential.Cnf{JKT: strings.Repeat("B", 42) + "A"}
	if out, err := e.svc.Exchange(ctx, x, tokenPoint); err == nil || out.Token != "" {
		t.Errorf("bound, with the ledger down: %+v, %v; want no token", out, err)
	}
	e.store.fail.Store(false)
	if _, err := e.svc.Exchange(ctx, x, tokenPoint); err != nil {
		t.Errorf("bound: %v", err)
	}
}
