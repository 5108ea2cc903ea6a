package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/cedar-policy/cedar-go"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// compiledPacks compiles both default packs, optionally with extra files.
func compiledPacks(t testing.TB, extra map[string][]File) map[string]Engine {
	t.Helper()
	out := map[string]Engine{}
	for _, e := range []string{EngineRego, EngineCedar} {
		src, err := DefaultPack(e)
		if err != nil {
			t.Fatal(err)
		}
		src = withFiles(src, extra[e]...)
		eng, err := Compile(context.Background(), src)
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		out[e] = eng
	}
	return out
}

// withFiles returns src with files replaced or added.
func withFiles(src Sources, files ...File) Sources {
	out := Sources{Engine: src.Engine}
	repl := map[string]File{}
	for _, f := range files {
		repl[f.Path] = f
	}
	for _, f := range src.Files {
		if r, ok := repl[f.Path]; ok {
			f = r
			delete(repl, f.Path)
		}
		out.Files = append(out.Files, f)
	}
	for _, f := range files {
		if _, ok := repl[f.Path]; ok {
			out.Files = append(out.Files, f)
		}
	}
	return out
}

var baseScope = Scope{
	Tools:        []string{"invoices.*", "mail.send"},
	Resources:    []string{"erp://invoices/2026-Q3/*", "mail://finance"},
	Operations:   []string{"read", "send"},
	DataClass:    "confidential",
	Environments: []string{"dev", "staging", "prod"},
}

type agreeCase struct {
	name  string
	point Point
	in    Input
	want  Effect
}

func mkInput(env string, scope Scope, action *Action) Input {
	return Input{
		Principal: Principal{ID: "alice@example.com"},
		Agent:     Agent{ID: "spiffe://example.org/agent/summarizer"},
		Task:      Task{ID: "tsk_1", Scope: scope},
		Action:    action,
		Request:   Request{Environment: env},
	}
}

// agreementCases builds the table: a grid over points, environments, data
// classes, scope matches and TTLs, plus hand-picked edge cases.
func agreementCases() []agreeCase {
	var cs []agreeCase
	add := func(name string, p Point, in Input, want Effect) {
		cs = append(cs, agreeCase{name, p, in, want})
	}
	// task point: environment x ceiling x ttl.
	ttlCap := map[string]string{"dev": "8h", "staging": "2h", "prod": "1h", "qa": "1h"}
	over := map[string]string{"dev": "8h1s", "staging": "2h1m", "prod": "61m", "qa": "2h"}
	for _, env := range []string{"dev", "staging", "prod", "qa"} {
		for _, dc := range []string{"public", "internal", "confidential", "restricted"} {
			s := baseScope
			s.DataClass = dc
			s.Environments = []string{env}
			in := mkInput(env, s, nil)
			in.Task.TTL = ttlCap[env]
			want := Allow
			if env == "prod" && (dc == "confidential" || dc == "restricted") {
				want = RequireApproval
			}
			add(fmt.Sprintf("task/%s/%s/at-cap", env, dc), PointTask, in, want)
			in.Task.TTL = over[env]
			add(fmt.Sprintf("task/%s/%s/over-cap", env, dc), PointTask, in, Deny)
		}
	}
	// exchange point.
	for _, env := range []string{"dev", "staging", "prod", "qa"} {
		s := baseScope
		s.Environments = []string{"*"}
		in := mkInput(env, s, nil)
		in.Credential = &Credential{TTL: "10m", Binding: "dpop"}
		add("exchange/"+env, PointExchange, in, Allow)
	}
	in := mkInput("prod", Scope{Environments: []string{"dev"}, DataClass: "public"}, nil)
	add("exchange/env-out-of-scope", PointExchange, in, Deny)
	in = mkInput("dev", baseScope, nil)
	in.Credential = &Credential{TTL: "soon"}
	add("exchange/bad-ttl", PointExchange, in, Deny)

	// action point: tool x resource x operation x data class.
	tools := map[string]bool{"invoices.read": true, "mail.send": true, "payments.send": false}
	ress := map[string]bool{"erp://invoices/2026-Q3/17": true, "erp://invoices/2026-Q2/1": false}
	for tool, tIn := range tools {
		for res, rIn := range ress {
			for _, dc := range []string{"internal", "restricted"} {
				a := &Action{Tool: tool, Operation: "read", Resource: res, DataClass: dc}
				want := Allow
				switch {
				case !tIn || dc == "restricted":
					want = Deny
				case !rIn:
					want = RequireApproval
				}
				add(fmt.Sprintf("action/%s/%s/%s", tool, res, dc), PointAction, mkInput("dev", baseScope, a), want)
			}
		}
	}
	add("action/op-out-of-scope", PointAction, mkInput("dev", baseScope, &Action{Tool: "invoices.read", Operation: "delete", Resource: "erp://invoices/2026-Q3/1"}), Deny)
	add("action/env-out-of-scope", PointAction, mkInput("test", baseScope, &Action{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/1"}), Deny)
	add("action/unknown-class", PointAction, mkInput("dev", baseScope, &Action{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/1", DataClass: "secret"}), Deny)
	add("action/no-class-judged-at-ceiling", PointAction, mkInput("prod", baseScope, &Action{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/1"}), Allow)
	add("action/no-action-document", PointAction, mkInput("dev", baseScope, nil), Deny)
	// Resources are normalized before they match: none of these reaches
	// outside erp://invoices/2026-Q3/*, and case in the scheme and host
	// does not matter.
	for _, res := range []string{"erp://invoices/2026-Q3/../2026-Q2/1", "erp://invoices/2026-Q3/%2e%2e/2026-Q2/1",
		"erp://invoices/2026-Q3/1?x=../..", "erp://invoices/2026-Q3/a%2F..%2F..%2F2026-Q2"} {
		add("action/escape/"+res, PointAction, mkInput("dev", baseScope, &Action{Tool: "invoices.read", Operation: "read", Resource: res}), RequireApproval)
	}
	add("action/normalized-case", PointAction, mkInput("dev", baseScope, &Action{Tool: "invoices.read", Operation: "read", Resource: "ERP://Invoices/2026-Q3/%31%37"}), Allow)
	add("action/step-up-and-deny-deny-wins", PointAction, mkInput("dev", baseScope, &Action{Tool: "mail.send", Operation: "delete", Resource: "mail://hr"}), Deny)

	// list point.
	for tool, tIn := range map[string]bool{"invoices.read": true, "invoices.write": true, "mail.send": true, "mail.read": false, "shell": false} {
		want := Deny
		if tIn {
			want = Allow
		}
		add("list/"+tool, PointList, mkInput("dev", baseScope, &Action{Tool: tool}), want)
	}
	add("list/empty-scope", PointList, mkInput("dev", Scope{}, &Action{Tool: "x"}), Deny)

	// delegation.
	child := baseScope
	child.Tools = []string{"invoices.read"}
	child.DataClass = "internal"
	child.Environments = []string{"dev"}
	in = mkInput("dev", child, nil)
	in.Task.ParentChain = []ParentTask{{ID: "p", Scope: baseScope}}
	add("delegation/narrows", PointTask, in, Allow)
	wide := child
	wide.Tools = []string{"invoices.*", "payments.*"}
	in = mkInput("dev", wide, nil)
	in.Task.ParentChain = []ParentTask{{ID: "p", Scope: baseScope}}
	add("delegation/widens-tools", PointTask, in, Deny)
	climb := child
	climb.Resources = []string{"erp://invoices/2026-Q3/../*"}
	in = mkInput("dev", climb, nil)
	in.Task.ParentChain = []ParentTask{{ID: "p", Scope: baseScope}}
	add("delegation/resource-dot-segment", PointTask, in, Deny)
	up := child
	up.DataClass = "restricted"
	in = mkInput("dev", up, nil)
	in.Task.ParentChain = []ParentTask{{ID: "p", Scope: baseScope}}
	add("delegation/raises-ceiling", PointTask, in, Deny)
	in = mkInput("dev", child, nil)
	in.Task.ParentChain = []ParentTask{{ID: "p", Scope: baseScope}, {ID: "root", Scope: Scope{Tools: []string{"mail.*"}, DataClass: "restricted", Environments: []string{"*"}, Operations: []string{"*"}, Resources: []string{"*"}}}}
	add("delegation/parent-wider-than-root", PointTask, in, Deny)

	// task edge cases.
	in = mkInput("dev", baseScope, nil)
	in.Task.TTL = "-5m"
	add("task/negative-ttl", PointTask, in, Deny)
	in = mkInput("dev", Scope{Environments: []string{"dev"}, DataClass: "top-secret"}, nil)
	add("task/unknown-class", PointTask, in, Deny)
	in = mkInput("dev", Scope{Environments: []string{"prod"}, DataClass: "public"}, nil)
	add("task/env-out-of-scope", PointTask, in, Deny)
	return append(cs, historyCases()...)
}

// outbound lists the operations the default packs treat as sending data
// out (data.json outbound_operations, Config::"pack".outbound_operations).
var outbound = []string{"send", "post", "publish", "upload", "share", "export", "email", "forward", "transfer", "write_external", "push", "notify"}

// historyCases decide calls over a task's history: the data-flow rule
// (outbound operations once confidential data was allowed) for every
// operation and data class level, beside the rules it must not change.
func historyCases() []agreeCase {
	var cs []agreeCase
	wide := baseScope
	wide.Tools, wide.Operations, wide.Resources = []string{"*"}, []string{"*"}, []string{"*"}
	for _, op := range append([]string{"read", "write", "delete", "sender", "call"}, outbound...) {
		for level := -1; level <= 3; level++ {
			in := mkInput("dev", wide, &Action{Tool: "mail.send", Operation: op, Resource: "mail://finance", DataClass: "internal"})
			in.History = historyAt(level, 0)
			want := Allow
			if level >= 2 && slices.Contains(outbound, op) {
				want = RequireApproval
			}
			cs = append(cs, agreeCase{fmt.Sprintf("history/%s/level%d", op, level), PointAction, in, want})
		}
	}
	// A call out of scope is denied whatever the history; the data-flow
	// step-up and the resource step-up ask together.
	in := mkInput("dev", baseScope, &Action{Tool: "payments.send", Operation: "send", Resource: "mail://finance"})
	in.History = historyAt(3, 0)
	cs = append(cs, agreeCase{"history/out-of-scope-denied", PointAction, in, Deny})
	in = mkInput("dev", baseScope, &Action{Tool: "mail.send", Operation: "send", Resource: "mail://hr"})
	in.History = historyAt(2, 0)
	cs = append(cs, agreeCase{"history/both-step-ups", PointAction, in, RequireApproval})
	// Without a rate configured, no number of calls throttles.
	in = mkInput("dev", baseScope, &Action{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/1"})
	in.History = historyAt(0, 1_000_000)
	cs = append(cs, agreeCase{"history/no-rate-configured", PointAction, in, Allow})
	// Listing and opening tasks do not read history.
	in = mkInput("dev", baseScope, &Action{Tool: "mail.send", Operation: "send"})
	in.History = historyAt(3, 1_000_000)
	cs = append(cs, agreeCase{"history/list-unaffected", PointList, in, Allow})
	in = mkInput("dev", baseScope, nil)
	in.Task.TTL = "1h"
	in.History = historyAt(3, 1_000_000)
	cs = append(cs, agreeCase{"history/task-unaffected", PointTask, in, Allow})
	return cs
}

// historyAt is a history whose task reached data class level and whose
// agent made calls in the last minute.
func historyAt(level int, calls int64) *History {
	h := emptyHistory
	h.Task.MaxDataClassLevel = level
	h.Task.MaxDataClass = []string{"", "public", "internal", "confidential", "restricted"}[level+1]
	h.Agent.LastMinute = Window{Calls: calls, Allowed: calls}
	h.Agent.LastHour = h.Agent.LastMinute
	return &h
}

// rateData configures both packs with a rate of 100 calls a minute, and
// agent "slow" with 5 and agent "fast" with 200 of their own.
func rateData() map[string][]File {
	ops, _ := json.Marshal(outbound)
	return map[string][]File{
		EngineRego: {{Path: regoDataFile, Data: fmt.Appendf(nil, `{"agents": {
			"spiffe://example.org/agent/slow": {"calls_per_minute": 5},
			"spiffe://example.org/agent/fast": {"calls_per_minute": 200}},
			"outbound_operations": %s, "agent_calls_per_minute": 100}`, ops)}},
		EngineCedar: {{Path: cedarEntitiesFile, Data: fmt.Appendf(nil, `[
			{"uid": {"type": "Agent", "id": "spiffe://example.org/agent/slow"}, "attrs": {"calls_per_minute": 5}, "parents": []},
			{"uid": {"type": "Agent", "id": "spiffe://example.org/agent/fast"}, "attrs": {"calls_per_minute": 200}, "parents": []},
			{"uid": {"type": "Config", "id": "pack"}, "attrs": {"outbound_operations": %s, "agent_calls_per_minute": 100}, "parents": []}]`, ops)}},
	}
}

// TestPacksAgreeOnRate: with a rate configured, an agent past it across
// its tasks is throttled, by the pack's rate or by its own, alike in both
// languages.
func TestPacksAgreeOnRate(t *testing.T) {
	engines := compiledPacks(t, rateData())
	ctx := context.Background()
	for _, tc := range []struct {
		agent string
		calls int64
		want  string // the denying policy, or "" for allow
	}{
		{"summarizer", 0, ""}, {"summarizer", 99, ""}, {"summarizer", 100, "agent-rate"}, {"summarizer", 5000, "agent-rate"},
		{"slow", 4, ""}, {"slow", 5, "agent-rate-override"},
		{"fast", 150, ""}, {"fast", 199, ""}, {"fast", 200, "agent-rate-override"},
	} {
		in := mkInput("dev", baseScope, &Action{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/1"})
		in.Agent.ID = "spiffe://example.org/agent/" + tc.agent
		in.History = historyAt(0, tc.calls)
		x, err := prepare(PointAction, &in)
		if err != nil {
			t.Fatal(err)
		}
		rr, err := engines[EngineRego].Eval(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		cr, err := engines[EngineCedar].Eval(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(rr, cr); diff != "" {
			t.Errorf("%s at %d: rego and cedar disagree (-rego +cedar):\n%s", tc.agent, tc.calls, diff)
		}
		switch {
		case tc.want == "" && rr.Effect != Allow:
			t.Errorf("%s at %d calls: %s %q, want allow", tc.agent, tc.calls, rr.Effect, rr.Reasons)
		case tc.want != "" && (rr.Effect != Deny || !slices.Equal(rr.PolicyIDs, []string{tc.want})):
			t.Errorf("%s at %d calls: %s %q, want deny by %s", tc.agent, tc.calls, rr.Effect, rr.PolicyIDs, tc.want)
		}
	}
}

// TestPackSettingsAgree: the settings both packs ship (data.json and
// Config::"pack") are the same, and the outbound list is the documented one.
func TestPackSettingsAgree(t *testing.T) {
	var rego struct {
		Outbound []string `json:"outbound_operations"`
		Rate     int64    `json:"agent_calls_per_minute"`
	}
	var cedar []struct {
		UID   struct{ Type, ID string } `json:"uid"`
		Attrs struct {
			Outbound []string `json:"outbound_operations"`
			Rate     int64    `json:"agent_calls_per_minute"`
		} `json:"attrs"`
	}
	for engine, v := range map[string]any{EngineRego: &rego, EngineCedar: &cedar} {
		src, err := DefaultPack(engine)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range src.Files {
			if f.Path == regoDataFile || f.Path == cedarEntitiesFile {
				if err := json.Unmarshal(f.Data, v); err != nil {
					t.Fatalf("%s: %v", f.Path, err)
				}
			}
		}
	}
	if len(cedar) != 1 || cedar[0].UID.Type != "Config" || cedar[0].UID.ID != "pack" {
		t.Fatalf("cedar entities: %+v", cedar)
	}
	if !slices.Equal(rego.Outbound, outbound) || !slices.Equal(cedar[0].Attrs.Outbound, outbound) || rego.Rate != cedar[0].Attrs.Rate {
		t.Errorf("settings differ: rego %+v, cedar %+v, want outbound %q", rego, cedar[0].Attrs, outbound)
	}
}

// TestPacksAgree proves the Rego and Cedar default packs decide alike:
// same effect, reasons, policy IDs and obligations on every case.
func TestPacksAgree(t *testing.T) {
	cases := agreementCases()
	if len(cases) < 50 {
		t.Fatalf("only %d cases; the packs must be compared on at least 50", len(cases))
	}
	engines := compiledPacks(t, nil)
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x, err := prepare(tc.point, &tc.in)
			if err != nil {
				t.Fatal(err)
			}
			rr, err := engines[EngineRego].Eval(ctx, x)
			if err != nil {
				t.Fatalf("rego: %v", err)
			}
			cr, err := engines[EngineCedar].Eval(ctx, x)
			if err != nil {
				t.Fatalf("cedar: %v", err)
			}
			if rr.Effect != tc.want {
				t.Errorf("rego effect %s, want %s (reasons %q)", rr.Effect, tc.want, rr.Reasons)
			}
			if diff := cmp.Diff(rr, cr); diff != "" {
				t.Errorf("rego and cedar disagree (-rego +cedar):\n%s", diff)
			}
		})
	}
}

// TestSuspendedAgentData checks the data both packs consult (data.json for
// Rego, entities.json for Cedar): a suspended agent is denied everywhere.
func TestSuspendedAgentData(t *testing.T) {
	engines := compiledPacks(t, agentData(10, "spiffe://example.org/agent/summarizer"))
	for _, p := range Points {
		in := mkInput("dev", baseScope, &Action{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/1"})
		x, _ := prepare(p, &in)
		for name, e := range engines {
			r, err := e.Eval(context.Background(), x)
			if err != nil {
				t.Fatal(err)
			}
			if r.Effect != Deny || !cmp.Equal(r.PolicyIDs, []string{"agent-suspended"}) {
				t.Errorf("%s %s: got %s %q, want deny by agent-suspended", name, p, r.Effect, r.PolicyIDs)
			}
		}
		other := in
		other.Agent.ID = "spiffe://example.org/agent/a3"
		x, _ = prepare(p, &other)
		for name, e := range engines {
			if r, _ := e.Eval(context.Background(), x); r.Effect != Allow {
				t.Errorf("%s %s: active agent got %s %q", name, p, r.Effect, r.Reasons)
			}
		}
	}
}

// agentData builds n agents' entries for both engines; suspended names one
// that is suspended.
func agentData(n int, suspended string) map[string][]File {
	var rego, cedar []byte
	rego = append(rego, `{"agents": {`...)
	cedar = append(cedar, '[')
	for i := range n {
		id := fmt.Sprintf("spiffe://example.org/agent/a%d", i)
		s := false
		if i == n-1 {
			id, s = suspended, true
		}
		if i > 0 {
			rego = append(rego, ',')
			cedar = append(cedar, ',')
		}
		rego = fmt.Appendf(rego, `%q: {"suspended": %t, "team": "t%d"}`, id, s, i%7)
		cedar = fmt.Appendf(cedar, `{"uid": {"type": "Agent", "id": %q}, "attrs": {"suspended": %t}, "parents": []}`, id, s)
	}
	// The pack's own settings stay.
	rego = append(rego, `}, "outbound_operations": ["send", "post", "publish", "upload", "share", "export", "email", "forward", "transfer", "write_external", "push", "notify"], "agent_calls_per_minute": 0}`...)
	cedar = append(cedar, `, {"uid": {"type": "Config", "id": "pack"}, "attrs": {"outbound_operations": ["send", "post", "publish", "upload", "share", "export", "email", "forward", "transfer", "write_external", "push", "notify"], "agent_calls_per_minute": 0}, "parents": []}]`...)
	return map[string][]File{
		EngineRego:  {{Path: regoDataFile, Data: rego}},
		EngineCedar: {{Path: cedarEntitiesFile, Data: cedar}},
	}
}

func TestCedarContextMembers(t *testing.T) {
	tests := []struct {
		policy string
		want   cedarMembers // nil: the whole context
		hist   [][]string
	}{
		{`permit(principal, action, resource) when { context.derived.a && context has request };`, cedarMembers{"derived": {"a": true}, "request": nil}, nil},
		{`permit(principal, action, resource) when { context["task"].id == "x" };`, cedarMembers{"task": {"id": true}}, nil},
		{`permit(principal, action, resource) when { context == {} };`, nil, nil},
		{`permit(principal, action, resource) when { principal.x == context };`, nil, nil},
		{`permit(principal, action, resource);`, cedarMembers{}, nil},
		{`permit(principal, action, resource) when { context.history.task.max_data_class_level > 1 && context.history.agent has last_hour };`,
			cedarMembers{"history": {"task": true, "agent": true}}, [][]string{{"task", "max_data_class_level"}, {"agent", "last_hour"}}},
		{`permit(principal, action, resource) when { context.history == {} };`, cedarMembers{"history": nil}, [][]string{{}}},
	}
	for _, tt := range tests {
		e, err := compileCedar(Sources{Engine: EngineCedar, Files: []File{{"p.cedar", []byte(tt.policy)}}})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, e.members); diff != "" {
			t.Errorf("%s: members (-want +got):\n%s", tt.policy, diff)
		}
		var hist [][]string
		if tt.want != nil {
			p, _ := cedar.NewPolicyListFromBytes("p.cedar", []byte(tt.policy))
			contextMembers(p[0], cedarMembers{}, &hist)
		}
		if diff := cmp.Diff(tt.hist, hist, cmpopts.SortSlices(func(a, b []string) bool { return slices.Compare(a, b) < 0 })); diff != "" {
			t.Errorf("%s: history paths (-want +got):\n%s", tt.policy, diff)
		}
	}
	// A policy reading a member the pruned context lacks must still see it.
	src := Sources{Engine: EngineCedar, Files: []File{{"p.cedar", []byte(
		`@id("p") permit(principal, action, resource) when { context.task.scope.tools.contains("invoices.*") && context.agent.id like "spiffe://*" };`)}}}
	e, err := Compile(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := prepare(PointAction, inScopeAction())
	if r, err := e.Eval(context.Background(), x); err != nil || r.Effect != Allow {
		t.Fatalf("raw input not visible: %+v %v", r, err)
	}
}
