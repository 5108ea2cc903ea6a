package policy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"invoices.*", "invoices.read", true},
		{"invoices.*", "invoices.", true},
		{"invoices.*", "invoices", false},
		{"invoices.*", "payments.read", false},
		{"erp://invoices/2026-Q3/*", "erp://invoices/2026-Q3/17", true},
		{"erp://invoices/2026-Q3/*", "erp://invoices/2026-Q3/a/b", true},
		{"erp://invoices/2026-Q3/*", "erp://invoices/2026-Q2/17", false},
		{"*", "", true},
		{"", "", true},
		{"", "x", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
		{"*.send", "mail.send", true},
		{"mail.send", "mail.send", true},
		{"mail.send", "mail.sends", false},
		{"**", "anything", true},
		{"a*a*a*a*b", strings.Repeat("a", 200), false},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.s); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

// FuzzMatchContainment checks the property delegation relies on: when outer
// matches inner's text, every string inner matches, outer matches too.
func FuzzMatchContainment(f *testing.F) {
	f.Add("invoices.*", "invoices.read*", "invoices.readXY")
	f.Add("*a", "b*a", "bzza")
	f.Add("a*", "a", "a")
	f.Fuzz(func(t *testing.T, outer, inner, s string) {
		if len(outer)+len(inner)+len(s) > 300 {
			return
		}
		if Match(outer, inner) && Match(inner, s) && !Match(outer, s) {
			t.Fatalf("outer %q covers inner %q, inner matches %q, outer does not", outer, inner, s)
		}
	})
}

func TestDerive(t *testing.T) {
	scope := Scope{Tools: []string{"invoices.*"}, Resources: []string{"erp://x/*"}, Operations: []string{"read"},
		DataClass: "confidential", Environments: []string{"prod"}}
	tests := []struct {
		name  string
		point Point
		in    Input
		want  Derived
	}{
		{"action in scope", PointAction, Input{Task: Task{Scope: scope}, Action: &Action{Tool: "invoices.read", Operation: "read", Resource: "erp://x/1", DataClass: "internal"}, Request: Request{Environment: "prod"}},
			Derived{ToolInScope: true, ResourceInScope: true, OperationInScope: true, EnvironmentInScope: true, DataClassLevel: 1, CeilingLevel: 2, DataClassKnown: true, NarrowsParent: true, TTLValid: true}},
		{"action without class takes the ceiling", PointAction, Input{Task: Task{Scope: scope}, Action: &Action{Tool: "mail.send"}, Request: Request{Environment: "dev"}},
			Derived{DataClassLevel: 2, CeilingLevel: 2, DataClassKnown: true, NarrowsParent: true, TTLValid: true}},
		{"unknown class", PointAction, Input{Task: Task{Scope: scope}, Action: &Action{DataClass: "secret"}},
			Derived{DataClassLevel: -1, CeilingLevel: 2, NarrowsParent: true, TTLValid: true}},
		{"task ttl rounds up", PointTask, Input{Task: Task{Scope: scope, TTL: "1h0m0.5s"}},
			Derived{DataClassLevel: 2, CeilingLevel: 2, DataClassKnown: true, NarrowsParent: true, TTLSeconds: 3601, TTLValid: true}},
		{"exchange reads the credential ttl", PointExchange, Input{Task: Task{Scope: scope, TTL: "1h"}, Credential: &Credential{TTL: "5m"}},
			Derived{DataClassLevel: 2, CeilingLevel: 2, DataClassKnown: true, NarrowsParent: true, TTLSeconds: 300, TTLValid: true}},
		{"bad ttl", PointTask, Input{Task: Task{Scope: scope, TTL: "0s"}},
			Derived{DataClassLevel: 2, CeilingLevel: 2, DataClassKnown: true, NarrowsParent: true}},
		{"delegation widening", PointTask, Input{Task: Task{Scope: Scope{Tools: []string{"*"}, DataClass: "public"}, ParentChain: []ParentTask{{Scope: scope}}}},
			Derived{DataClassLevel: 0, CeilingLevel: 0, DataClassKnown: true, Delegated: true, TTLValid: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, err := prepare(tt.point, &tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, x.Derived); diff != "" {
				t.Errorf("derived (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScopeWithin(t *testing.T) {
	parent := Scope{Tools: []string{"invoices.*", "mail.send"}, Resources: []string{"erp://invoices/*"}, Operations: []string{"read"}, DataClass: "confidential", Environments: []string{"prod"}}
	tests := []struct {
		name  string
		child Scope
		want  bool
	}{
		{"same", parent, true},
		{"narrower", Scope{Tools: []string{"invoices.read"}, Resources: []string{"erp://invoices/2026/*"}, Operations: []string{"read"}, DataClass: "public", Environments: []string{"prod"}}, true},
		{"empty", Scope{DataClass: "public"}, true},
		{"wider tool", Scope{Tools: []string{"invoices*"}, DataClass: "public"}, false},
		{"other op", Scope{Operations: []string{"write"}, DataClass: "public"}, false},
		{"other env", Scope{Environments: []string{"*"}, DataClass: "public"}, false},
		{"higher class", Scope{DataClass: "restricted"}, false},
		{"unknown class", Scope{DataClass: ""}, false},
	}
	for _, tt := range tests {
		if got := scopeWithin(tt.child, parent); got != tt.want {
			t.Errorf("%s: scopeWithin = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPrepareDoesNotTrustCaller(t *testing.T) {
	in := Input{Derived: Derived{ToolInScope: true, ResourceInScope: true}, Action: &Action{Tool: "x"}}
	x, err := prepare(PointAction, &in)
	if err != nil {
		t.Fatal(err)
	}
	if x.Derived.ToolInScope || x.Derived.ResourceInScope {
		t.Error("caller-supplied derived facts survived")
	}
	if !in.Derived.ToolInScope {
		t.Error("prepare modified the caller's input")
	}
	if _, err := prepare("nope", &in); err == nil {
		t.Error("unknown point accepted")
	}
	if _, err := prepare(PointAction, nil); err == nil {
		t.Error("nil input accepted")
	}
}
