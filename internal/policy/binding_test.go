package policy

import (
	"context"
	"testing"
)

// TestRequireBindingObligation: both engines carry require_binding, and the
// fold keeps it when any permit asks for it.
func TestRequireBindingObligation(t *testing.T) {
	ctx := context.Background()
	bundles := map[string]Sources{
		"rego": {Engine: EngineRego, Files: []File{{"p.rego", []byte(`package writ

decision := {"permit": permit}

permit contains {"id": "in-scope"} if input.derived.tool_in_scope

permit contains {"id": "prod-bound", "obligations": {"require_binding": true}} if {
	input.request.environment == "prod"
}
`)}}},
		"cedar": {Engine: EngineCedar, Files: []File{{"p.cedar", []byte(`
@id("in-scope")
permit(principal, action, resource) when { context.derived.tool_in_scope };

@id("prod-bound")
@require_binding("true")
permit(principal, action, resource) when { context.request.environment == "prod" };
`)}}},
	}
	for name, src := range bundles {
		e, err := Compile(ctx, src)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for env, want := range map[string]bool{"prod": true, "dev": false} {
			in := inScopeAction()
			in.Request.Environment = env
			x, _ := prepare(PointAction, in)
			r, err := e.Eval(ctx, x)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if r.Effect != Allow || r.Obligations.RequireBinding != want {
				t.Errorf("%s in %s: effect %s, require_binding %v, want allow and %v", name, env, r.Effect, r.Obligations.RequireBinding, want)
			}
		}
	}
	// A value of the wrong type is a policy error, not silently false.
	bad := Sources{Engine: EngineRego, Files: []File{{"p.rego", []byte(`package writ

decision := {"permit": {{"id": "x", "obligations": {"require_binding": "yes"}}}}
`)}}}
	e, err := Compile(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := prepare(PointAction, inScopeAction())
	if _, err := e.Eval(ctx, x); err == nil {
		t.Error(`require_binding: "yes" was accepted`)
	}
	if _, err := Compile(ctx, Sources{Engine: EngineCedar, Files: []File{{"p.cedar", []byte(
		`@id("x") @require_binding("maybe") permit(principal, action, resource);`)}}}); err == nil {
		t.Error(`@require_binding("maybe") was accepted`)
	}
}
