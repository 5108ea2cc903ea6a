package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
)

func TestFoldMatches(t *testing.T) {
	yes := true
	ttl := func(d time.Duration) Obligations { return Obligations{MaxTTL: d} }
	tests := []struct {
		name                   string
		deny, approval, permit []ruleMatch
		want                   Result
	}{
		{
			name: "nothing applies",
			want: Result{Effect: Deny, Reasons: []string{noPermitReason}, PolicyIDs: []string{}},
		},
		{
			name:   "deny wins over approval and permit, without obligations",
			deny:   []ruleMatch{{id: "d2", reason: "two"}, {id: "d1", reason: "one"}, {id: "d3", reason: "one"}},
			permit: []ruleMatch{{id: "p", oblig: ttl(time.Hour)}},
			want:   Result{Effect: Deny, Reasons: []string{"one", "two"}, PolicyIDs: []string{"d1", "d2", "d3"}},
		},
		{
			name:     "approval without a permit is a deny",
			approval: []ruleMatch{{id: "a", reason: "ask"}},
			want:     Result{Effect: Deny, Reasons: []string{noPermitReason}, PolicyIDs: []string{}},
		},
		{
			name:   "permits fold their obligations",
			permit: []ruleMatch{{id: "p1", oblig: ttl(time.Hour)}, {id: "p2", oblig: Obligations{MaxTTL: 90 * time.Second, Redact: []string{"b", "a"}, RecordOutput: &yes}}},
			want: Result{Effect: Allow, Reasons: []string{}, PolicyIDs: []string{"p1", "p2"},
				Obligations: Obligations{MaxTTL: 90 * time.Second, MaxTTLSeconds: 90, Redact: []string{"a", "b"}, RecordOutput: &yes}},
		},
		{
			name:     "approval needs at least one approver",
			approval: []ruleMatch{{id: "a", reason: "ask"}},
			permit:   []ruleMatch{{id: "p"}},
			want: Result{Effect: RequireApproval, Reasons: []string{"ask"}, PolicyIDs: []string{"a", "p"},
				Obligations: Obligations{Approvals: 1}},
		},
		{
			name:     "the most approvals win",
			approval: []ruleMatch{{id: "a1", reason: "x", oblig: Obligations{Approvals: 2}}, {id: "a2", reason: "y", oblig: Obligations{Approvals: 1}}},
			permit:   []ruleMatch{{id: "p", oblig: Obligations{Approvals: 3}}},
			want: Result{Effect: RequireApproval, Reasons: []string{"x", "y"}, PolicyIDs: []string{"a1", "a2", "p"},
				Obligations: Obligations{Approvals: 3}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := foldMatches(tt.deny, tt.approval, tt.permit)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestRegoResult reads both shapes of data.writ.decision, and refuses
// anything that could make a misspelt rule or obligation go unnoticed.
func TestRegoResult(t *testing.T) {
	tests := []struct {
		name    string
		value   string // Rego term
		want    Result
		wantErr string
	}{
		{
			name:  "rule lists as sets",
			value: `{"deny": set(), "approval": {{"id": "a", "reason": "ask", "obligations": {"approvals": 2}}}, "permit": {{"id": "p", "obligations": {"max_ttl": "1h", "redact": {"x"}}}}}`,
			want: Result{Effect: RequireApproval, Reasons: []string{"ask"}, PolicyIDs: []string{"a", "p"},
				Obligations: Obligations{MaxTTL: time.Hour, MaxTTLSeconds: 3600, Approvals: 2, Redact: []string{"x"}}},
		},
		{
			name:  "rule lists as arrays, keys optional",
			value: `{"permit": [{"id": "p", "obligations": {"max_ttl": 60, "record_output": false}}]}`,
			want: Result{Effect: Allow, Reasons: []string{}, PolicyIDs: []string{"p"},
				Obligations: Obligations{MaxTTL: time.Minute, MaxTTLSeconds: 60, RecordOutput: new(false)}},
		},
		{
			name:  "a deny without a reason names its rule",
			value: `{"deny": [{"id": "d"}], "permit": [{"id": "p"}]}`,
			want:  Result{Effect: Deny, Reasons: []string{"forbidden by policy d"}, PolicyIDs: []string{"d"}},
		},
		{
			name:  "empty object permits nothing",
			value: `{}`,
			want:  Result{Effect: Deny, Reasons: []string{noPermitReason}, PolicyIDs: []string{}},
		},
		{
			name:  "explicit effect",
			value: `{"effect": "require_approval", "reasons": ["r"], "policy_ids": {"x"}, "debug": 1}`,
			want:  Result{Effect: RequireApproval, Reasons: []string{"r"}, PolicyIDs: []string{"x"}, Obligations: Obligations{Approvals: 1}},
		},
		{
			name:  "explicit deny without reasons",
			value: `{"effect": "deny"}`,
			want:  Result{Effect: Deny, Reasons: []string{"denied by policy"}, PolicyIDs: []string{}},
		},
		{name: "not an object", value: `["allow"]`, wantErr: "is a array, want an object"},
		{name: "misspelt list", value: `{"denys": [{"id": "d"}], "permit": [{"id": "p"}]}`, wantErr: `key "denys"`},
		{name: "list of strings", value: `{"permit": ["p"]}`, wantErr: "permit holds a string"},
		{name: "list is an object", value: `{"permit": {"id": "p"}}`, wantErr: "permit is a object, want an array or a set"},
		{name: "entry without id", value: `{"permit": [{"obligations": {}}]}`, wantErr: "has no id"},
		{name: "entry with unknown key", value: `{"permit": [{"id": "p", "obligation": {}}]}`, wantErr: `key "obligation"`},
		{name: "id not a string", value: `{"deny": [{"id": 1}]}`, wantErr: "deny.id is a number"},
		{name: "unknown obligation", value: `{"permit": [{"id": "p", "obligations": {"launch": true}}]}`, wantErr: "unknown obligation"},
		{name: "obligations not an object", value: `{"permit": [{"id": "p", "obligations": []}]}`, wantErr: "obligations is a array"},
		{name: "bad ttl", value: `{"permit": [{"id": "p", "obligations": {"max_ttl": -5}}]}`, wantErr: "max_ttl"},
		{name: "ttl of the wrong type", value: `{"permit": [{"id": "p", "obligations": {"max_ttl": true}}]}`, wantErr: "max_ttl is a boolean"},
		{name: "fractional approvals", value: `{"permit": [{"id": "p", "obligations": {"approvals": 1.5}}]}`, wantErr: "approvals"},
		{name: "too many approvals", value: `{"permit": [{"id": "p", "obligations": {"approvals": 101}}]}`, wantErr: "approvals"},
		{name: "redact of numbers", value: `{"permit": [{"id": "p", "obligations": {"redact": [1]}}]}`, wantErr: "redact holds a number"},
		{name: "record_output as text", value: `{"permit": [{"id": "p", "obligations": {"record_output": "yes"}}]}`, wantErr: "record_output is a string"},
		{name: "bad effect", value: `{"effect": "maybe"}`, wantErr: `effect "maybe"`},
		{name: "reasons not a list", value: `{"effect": "deny", "reasons": "no"}`, wantErr: "reasons is a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			term, err := ast.ParseTerm(tt.value)
			if err != nil {
				t.Fatal(err)
			}
			got, err := regoResult(term.Value)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("regoResult = %+v, %v; want an error mentioning %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRegoInputPaths(t *testing.T) {
	set := func(keys ...string) map[string]bool {
		m := map[string]bool{}
		for _, k := range keys {
			m[k] = true
		}
		return m
	}
	tests := []struct {
		name   string
		module string
		want   inputPaths // nil: the whole input
	}{
		{"refs", `decision := {"effect": "allow"} if { input.task.id == "x"; input["derived"].ok; data.a[input.agent.id]; input.task.scope.tools[_] == "t" }`,
			inputPaths{"task": set("id", "scope"), "derived": set("ok"), "agent": set("id")}},
		{"whole member", `decision := {"effect": "allow"} if { input.request.environment == "dev"; count(input.request) > 1 }`,
			inputPaths{"request": nil}},
		{"whole member first", `decision := {"effect": "allow"} if { count(input.request) > 1; input.request.environment == "dev" }`,
			inputPaths{"request": nil}},
		{"member indexed by a variable", `decision := {"effect": "allow"} if { some k; input.task[k] == 1 }`,
			inputPaths{"task": nil}},
		{"nested", `decision := {"effect": "allow"} if input.a.b[input.c.d] == 1`, inputPaths{"a": set("b"), "c": set("d")}},
		{"import", "import input.request as r\ndecision := {\"effect\": \"allow\"} if r.environment == \"dev\"", inputPaths{"request": nil}},
		{"no input", `decision := {"effect": "allow"}`, inputPaths{}},
		{"whole input", `decision := {"effect": "allow", "n": count(input)}`, nil},
		{"variable member", `decision := {"effect": "allow"} if { some k; input[k] == 1 }`, nil},
		{"import whole", "import input\ndecision := {\"effect\": \"allow\"}", nil},
		{"with", `decision := x if x := data.f with input as {}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ast.ParseModuleWithOpts("p.rego", "package writ\n"+tt.module, ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				t.Fatal(err)
			}
			got := regoInputPaths(map[string]*ast.Module{"p.rego": m})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	src, _ := DefaultPack(EngineRego)
	e, err := compileRego(context.Background(), src, false)
	if err != nil {
		t.Fatal(err)
	}
	want := inputPaths{
		"point":   nil,
		"agent":   set("id"),
		"action":  set("operation"),
		"history": set("task", "agent"),
		"request": set("environment"),
		"derived": set("tool_in_scope", "resource_in_scope", "operation_in_scope", "environment_in_scope",
			"data_class_level", "ceiling_level", "data_class_known", "delegated", "narrows_parent", "ttl_seconds", "ttl_valid"),
	}
	if diff := cmp.Diff(want, e.paths); diff != "" {
		t.Errorf("default pack paths (-want +got):\n%s", diff)
	}
}

// TestRegoValuePruned checks what a pruned input document holds: the keys
// named, every key of a member wanted whole, version and point always.
func TestRegoValuePruned(t *testing.T) {
	in := inScopeAction()
	in.Version, in.Point = InputVersion, PointAction
	full := regoValue(in, nil, nil, nil, nil)
	pruned := regoValue(in, inputPaths{"task": {"scope": true, "nope": true}, "request": nil}, nil, nil, nil)
	want := ast.MustParseTerm(`{"version": 1, "point": "action", "task": {"scope": ` +
		full.(ast.Object).Get(ast.StringTerm("task")).Value.(ast.Object).Get(ast.StringTerm("scope")).String() +
		`}, "request": ` + full.(ast.Object).Get(ast.StringTerm("request")).String() + `}`)
	if pruned.Compare(want.Value) != 0 {
		t.Errorf("pruned input\n%v\nwant\n%v", pruned, want)
	}
	// Everything but the credential, which this input has none of; the
	// history, empty, is always there.
	if got := full.(ast.Object).Len(); got != 9 {
		t.Errorf("full input has %d members, want 9: %v", got, full)
	}
}

// TestRegoPrunedInputStillVisible checks that a bundle reading members the
// default pack does not sees them, however it reaches them.
func TestRegoPrunedInputStillVisible(t *testing.T) {
	bodies := []string{
		`"invoices.*" in input.task.scope.tools`,
		`input.action.arguments.n == 7`,
		`some k, v in input; k == "principal"; v.id == "alice"`,
		`input.credential.binding == "dpop"`,
	}
	for _, body := range bodies {
		src := Sources{Engine: EngineRego, Files: []File{{"p.rego", []byte(
			"package writ\n\ndecision := {\"permit\": [{\"id\": \"p\"}]} if {\n\t" + body + "\n}\n")}}}
		e, err := Compile(context.Background(), src)
		if err != nil {
			t.Fatal(err)
		}
		in := inScopeAction()
		in.Principal.ID = "alice"
		in.Action.Arguments = map[string]any{"n": 7}
		in.Credential = &Credential{Binding: "dpop"}
		x, _ := prepare(PointAction, in)
		r, err := e.Eval(context.Background(), x)
		if err != nil || r.Effect != Allow {
			t.Errorf("%s: %+v %v", body, r, err)
		}
	}
}

// FuzzRegoResult feeds arbitrary decision values to the reader: it must
// return a valid decision or an error, never panic.
func FuzzRegoResult(f *testing.F) {
	f.Add(`{"deny": {{"id": "d", "reason": "r"}}, "approval": set(), "permit": [{"id": "p", "obligations": {"max_ttl": 1}}]}`)
	f.Add(`{"effect": "allow", "obligations": {"redact": ["a"], "approvals": 2, "record_output": true}}`)
	f.Add(`{"permit": [{"id": "p", "obligations": {"max_ttl": "1h", "approvals": 1e3}}]}`)
	f.Add(`{"deny": [null], 1: 2}`)
	f.Fuzz(func(t *testing.T, s string) {
		term, err := ast.ParseTerm(s)
		if err != nil {
			return
		}
		r, err := regoResult(term.Value)
		if err != nil {
			return
		}
		if _, ok := parseEffect(string(r.Effect)); !ok || r.Reasons == nil || r.PolicyIDs == nil {
			t.Fatalf("invalid result %+v", r)
		}
		if r.Effect == Deny && len(r.Reasons) == 0 {
			t.Fatalf("deny without a reason: %+v", r)
		}
	})
}

// TestRegoContractExample evaluates the worked example of docs/policy.md
// ("Writing Rego policies"), read from the page, so that the documented
// contract and its example stay true.
func TestRegoContractExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "policy.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "Worked example, a\ncomplete bundle:\n\n```rego\n")
	module, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("worked example not found in docs/policy.md")
	}
	e, err := Compile(context.Background(), Sources{Engine: EngineRego, Files: []File{{"example.rego", []byte(module)}}})
	if err != nil {
		t.Fatal(err)
	}
	scope := Scope{Tools: []string{"payments.*"}, Resources: []string{"*"}, Operations: []string{"*"}, DataClass: "internal", Environments: []string{"*"}}
	tests := []struct {
		tool, op string
		want     Result
	}{
		{"payments.send", "send", Result{Effect: RequireApproval, Reasons: []string{"payments in prod need two approvers"},
			PolicyIDs:   []string{"in-scope", "payments-prod"},
			Obligations: Obligations{MaxTTL: 600 * time.Second, MaxTTLSeconds: 600, Approvals: 2, Redact: []string{"arguments.password"}}}},
		{"payments.send", "delete", Result{Effect: Deny, Reasons: []string{"deletes are not allowed in prod"}, PolicyIDs: []string{"no-prod-deletes"}}},
		{"shell.exec", "run", Result{Effect: Deny, Reasons: []string{noPermitReason}, PolicyIDs: []string{}}},
	}
	for _, tt := range tests {
		in := mkInput("prod", scope, &Action{Tool: tt.tool, Operation: tt.op, Resource: "bank://x"})
		x, _ := prepare(PointAction, &in)
		got, err := e.Eval(context.Background(), x)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s %s (-want +got):\n%s", tt.tool, tt.op, diff)
		}
	}
}

// TestDerivedCache checks that both engines' cached derived facts are
// always those asked for, across collisions and repeats.
func TestDerivedCache(t *testing.T) {
	var cache derivedCache[*ast.Term]
	var ccache derivedCache[types.Value]
	in := inScopeAction()
	for round := range 2 {
		for i := range 600 {
			d := Derived{
				ToolInScope: i&1 != 0, ResourceInScope: i&2 != 0, OperationInScope: i&4 != 0,
				EnvironmentInScope: i&8 != 0, DataClassKnown: i&16 != 0, Delegated: i&32 != 0,
				NarrowsParent: i&64 != 0, TTLValid: i&128 != 0,
				DataClassLevel: i%5 - 1, CeilingLevel: (i/5)%5 - 1, TTLSeconds: int64(i % 7 * 60),
			}
			in.Derived = d
			want := regoValue(in, nil, nil, nil, nil)
			got := regoValue(in, nil, nil, &cache, nil)
			if got.Compare(want) != 0 {
				t.Fatalf("round %d, facts %+v: cached input\n%v\nwant\n%v", round, d, got, want)
			}
			cwant := cedarContext(in, nil, nil, nil, nil)
			if cgot := cedarContext(in, nil, nil, nil, &ccache); !cgot.Equal(cwant) {
				t.Fatalf("round %d, facts %+v: cached context\n%v\nwant\n%v", round, d, cgot, cwant)
			}
		}
	}
}

// TestRegoConcurrentEval evaluates one engine from many goroutines on
// inputs that differ in their derived facts; each must get its own answer
// (run with -race to check the shared terms).
func TestRegoConcurrentEval(t *testing.T) {
	engines := compiledPacks(t, nil)
	cases := agreementCases()
	want := make([]Result, len(cases))
	inputs := make([]*Input, len(cases))
	for i, tc := range cases {
		inputs[i], _ = prepare(tc.point, &tc.in)
		r, err := engines[EngineCedar].Eval(context.Background(), inputs[i])
		if err != nil {
			t.Fatal(err)
		}
		want[i] = r
	}
	errs := make(chan string, 8)
	for g := range 8 {
		go func() {
			for n := range 3 * len(cases) {
				i := (n*7 + g) % len(cases)
				r, err := engines[EngineRego].Eval(context.Background(), inputs[i])
				if err != nil || !cmp.Equal(r, want[i]) {
					errs <- fmt.Sprintf("%s: %+v %v, want %+v", cases[i].name, r, err, want[i])
					return
				}
			}
			errs <- ""
		}()
	}
	for range 8 {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}

// TestTaskCache checks that the cached task member is always that of the
// task asked for: across tasks sharing a slot, a task whose fields change
// one at a time, and a caller changing its own lists after a call.
func TestTaskCache(t *testing.T) {
	var tasks taskCache[*ast.Term]
	calls, perMinute := int64(10), int64(5)
	variants := []func(*Task){
		func(*Task) {},
		func(t *Task) { t.State = "pending_approval" },
		func(t *Task) { t.Intent = "another" },
		func(t *Task) { t.TTL = "5m" },
		func(t *Task) { t.Scope.Tools = append(slices.Clone(t.Scope.Tools), "mail.send") },
		func(t *Task) { t.Scope.Resources = nil },
		func(t *Task) { t.Scope.Operations = []string{"write"} },
		func(t *Task) { t.Scope.DataClass = "restricted" },
		func(t *Task) { t.Scope.Environments = []string{"prod"} },
		func(t *Task) { t.Scope.Limits = &Limits{Calls: &calls} },
		func(t *Task) { t.Scope.Limits = &Limits{Calls: &calls, PerMinute: &perMinute} },
		func(t *Task) { t.Scope.Limits = &Limits{PerTool: map[string]int64{"fs.*": 3}} },
		func(t *Task) { t.ParentChain = []ParentTask{{ID: "tsk_parent", Agent: "a", Scope: t.Scope}} },
		func(t *Task) {
			t.ParentChain = []ParentTask{{ID: "tsk_parent", Agent: "a", Scope: Scope{Tools: []string{"*"}}}}
		},
	}
	for round := range 3 {
		for task := range 200 { // more tasks than slots
			for i, change := range variants {
				in := inScopeAction()
				in.Task.ID = fmt.Sprintf("tsk_%d", task)
				change(&in.Task)
				want := regoValue(in, nil, nil, nil, nil)
				got := regoValue(in, nil, nil, nil, &tasks)
				if got.Compare(want) != 0 {
					t.Fatalf("round %d, task %d, variant %d: cached input\n%v\nwant\n%v", round, task, i, got, want)
				}
			}
		}
	}
	// What the caller changes after a call is not in the cache's copy.
	in := inScopeAction()
	regoValue(in, nil, nil, nil, &tasks)
	in.Task.Scope.Tools[0] = "changed.*"
	want := regoValue(in, nil, nil, nil, nil)
	if got := regoValue(in, nil, nil, nil, &tasks); got.Compare(want) != 0 {
		t.Fatalf("a task's list changed in place: cached input\n%v\nwant\n%v", got, want)
	}
}
