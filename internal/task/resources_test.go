package task_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/task"
)

func kbScope(resources ...string) api.Scope {
	return api.Scope{Tools: []string{"kb.*"}, Resources: resources, Operations: []string{"read"},
		DataClass: "internal", Environments: []string{"dev"}}
}

// TestOpenNormalizesResources: the scope writ records, hashes and enforces
// holds its resource patterns in normal form; a pattern that has none is
// refused, named.
func TestOpenNormalizesResources(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	out := e.openTask(alice, kbScope("KB://Public/%7Edocs/*", "mail://finance"), nil)
	want := kbScope("kb://public/~docs/*", "mail://finance")
	if out.ScopeHash != task.Scope(want).Hash() {
		t.Errorf("scope hash %s is not that of the normalized scope %s", out.ScopeHash, task.Scope(want).Hash())
	}
	got, err := e.svc.Get(out.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want.Resources, got.Scope.Resources); diff != "" {
		t.Errorf("stored resources (-want +got):\n%s", diff)
	}

	for _, p := range []string{"kb://public/../private/*", "kb://public/%2e%2e/private/*", "kb://public/*?x=../..",
		"kb://public/a%2Fb/*", `kb://public\private`, "kb://public/\x00*"} {
		_, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "x", Scope: kbScope(p), TTL: "15m"})
		var te *refusal.Error
		if !errors.As(err, &te) || !errors.Is(err, task.ErrInvalid) || !strings.Contains(te.Detail, "scope.resources") {
			t.Errorf("pattern %q: %v; want invalid_request naming scope.resources", p, err)
		}
	}
}

// TestChildScopeResources: a child's resource pattern that climbs out of
// its parent's is refused, both when the child is opened and by the
// subset check itself.
func TestChildScopeResources(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	parent := e.openTask(alice, kbScope("kb://public/*"), nil)
	for _, p := range []string{"kb://public/../private/*", "kb://public/%2e%2e/private/*"} {
		_, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "x", Scope: kbScope(p), TTL: "15m", Parent: &parent.TaskID})
		if !errors.Is(err, task.ErrInvalid) {
			t.Errorf("child pattern %q: %v; want invalid_request", p, err)
		}
		if task.Scope(kbScope(p)).Within(task.Scope(kbScope("kb://public/*"))) {
			t.Errorf("%q counts as within kb://public/*", p)
		}
	}
	child := e.openTask(alice, kbScope("KB://PUBLIC/faq/*"), &parent.TaskID)
	if child.State != api.StateActive {
		t.Errorf("a narrower child written in another case: %+v", child)
	}
}

// TestAuthorizeNormalizesResource: the resources, which matched
// kb://public/* as text, are refused; a resource in another case of
// scheme and host, or with encoded unreserved characters, is decided and
// recorded in normal form.
func TestAuthorizeNormalizesResource(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	out := e.openTask(alice, kbScope("kb://public/*"), nil)
	cred := e.credential(out.TaskID)
	kb := func(res string) api.Authorize {
		return api.Authorize{Tool: "kb.read", Operation: "read", Resource: res, DataClass: "internal"}
	}
	size, _ := e.store.Size(ctx)
	for _, res := range []string{"kb://public/../private/secret", "kb://public/%2e%2e/private/x", "kb://public/x?x=../..",
		"kb://public/a%2F..%2Fprivate", `kb://public/..\private`} {
		a, err := e.svc.Authorize(ctx, cred, kb(res), task.Request{Gateway: policy.GatewayAPI})
		if !errors.Is(err, task.ErrInvalid) || a.Allow {
			t.Errorf("Authorize(%q) = %+v, %v; want invalid_request", res, a, err)
		}
	}
	if after, _ := e.store.Size(ctx); after != size {
		t.Errorf("refused resources appended %d events", after-size)
	}

	a, err := e.svc.Authorize(ctx, cred, kb("KB://Public/%66aq"), task.Request{Gateway: policy.GatewayAPI})
	if err != nil || !a.Allow {
		t.Fatalf("Authorize(KB://Public/%%66aq) = %+v, %v", a, err)
	}
	entry, _ := lastEvent(t, e, "")
	var data struct {
		Resource string `json:"resource"`
	}
	json.Unmarshal(entry.Event.Data, &data)
	if entry.Event.Type != ledger.TypeActionAuthorized || data.Resource != "kb://public/faq" {
		t.Errorf("recorded %s with resource %q, want action.authorized for kb://public/faq", entry.Event.Type, data.Resource)
	}
}

// TestVisibleHidesUnnormalizableResources: a listed tool whose resource
// has no normal form is hidden, and the listing records it.
func TestVisibleHidesUnnormalizableResources(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	out := e.openTask(alice, api.Scope{Tools: []string{"s.*"}, Resources: []string{"mcp://s/tools/*"}, Operations: []string{"call"},
		DataClass: "internal", Environments: []string{"dev"}}, nil)
	cred := e.credential(out.TaskID)
	vis, err := e.svc.Visible(ctx, cred, "s", []task.ListedTool{
		{Tool: "s.ok", Operation: "call", Resource: "mcp://s/tools/ok"},
		{Tool: "s.../resources/x", Operation: "call", Resource: "mcp://s/tools/../resources/x"},
	}, task.Request{Gateway: policy.GatewayMCP})
	if err != nil || !cmp.Equal(vis, []bool{true, false}) {
		t.Fatalf("Visible = %v, %v; want [true false]", vis, err)
	}
	if entry, _ := lastEvent(t, e, ""); entry.Event.Type != ledger.TypeToolsHidden || !strings.Contains(string(entry.Event.Data), "dot segment") {
		t.Errorf("recorded %s %s, want tools.hidden naming the dot segment", entry.Event.Type, entry.Event.Data)
	}
}
