package policy

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestHistoryLeavesMatchJSON: the history object both engines are given
// is the JSON form of History, field for field: no fact missing, none
// misnamed.
func TestHistoryLeavesMatchJSON(t *testing.T) {
	for _, h := range []*History{benchHistory(), &emptyHistory} {
		b, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ast.ParseTerm(string(b))
		if err != nil {
			t.Fatal(err)
		}
		if got := fullHistory.rego(h); got.Value.Compare(want.Value) != 0 {
			t.Errorf("rego history\n%v\nwant\n%v", got, want)
		}
		cb, err := json.Marshal(fullHistory.cedar(h))
		if err != nil {
			t.Fatal(err)
		}
		var cj, wj any
		json.Unmarshal(cb, &cj)
		json.Unmarshal(b, &wj)
		if c, w := mustJSONString(t, cj), mustJSONString(t, wj); c != w {
			t.Errorf("cedar history\n%s\nwant\n%s", c, w)
		}
	}
}

func mustJSONString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHistoryPlanPrunes: a plan builds the facts read, and only those.
func TestHistoryPlanPrunes(t *testing.T) {
	h := benchHistory()
	for _, tc := range []struct {
		read [][]string
		want string
	}{
		{[][]string{{"task", "max_data_class_level"}}, `{"task": {"max_data_class_level": 1}}`},
		{[][]string{{"agent", "last_minute"}, {"version"}}, `{"version": 1, "agent": {"last_minute": {"calls": 30, "allowed": 28, "denied": 2}}}`},
		{[][]string{{"tool", "allowed", "deeper"}}, `{"tool": {"allowed": 20}}`},
		{[][]string{{"nonesuch"}}, `{}`},
		{[][]string{}, `{}`},
	} {
		got := newHistoryPlan(tc.read).rego(h)
		if want := ast.MustParseTerm(tc.want); got.Value.Compare(want.Value) != 0 {
			t.Errorf("%q: %v, want %v", tc.read, got, want)
		}
	}
	if got := newHistoryPlan([][]string{{}}).rego(h); got.Value.Compare(fullHistory.rego(h).Value) != 0 {
		t.Errorf("history read whole: %v", got)
	}
}

// TestHistoryVisible: a bundle reading a fact the default pack does not
// sees it, in either engine, and an input without history reads as empty.
func TestHistoryVisible(t *testing.T) {
	facts := []struct{ rego, cedar string }{
		{`input.history.tool.in_flight == 1`, `context.history.tool.in_flight == 1`},
		{`input.history.resources.destination_reached`, `context.history.resources.destination_reached`},
		{`input.history.approvals.spent == 1`, `context.history.approvals.spent == 1`},
		{`input.history.task.last_hour.denied == 3`, `context.history.task.last_hour.denied == 3`},
		{`input.history.task.max_data_class == "internal"`, `context.history.task.max_data_class == "internal"`},
		{`h := input.history; h.operation.denied == 1`, `context.history.operation.denied == 1`},
		{`input.history[k].allowed == 20; k == "tool"`, `context["history"]["tool"]["allowed"] == 20`},
	}
	ctx := context.Background()
	for _, f := range facts {
		for _, src := range []Sources{
			{Engine: EngineRego, Files: []File{{"p.rego", []byte("package writ\n\ndecision := {\"permit\": [{\"id\": \"p\"}]} if {\n\t" + f.rego + "\n}\n")}}},
			{Engine: EngineCedar, Files: []File{{"p.cedar", []byte(`@id("p") permit(principal, action, resource) when { ` + f.cedar + ` };`)}}},
		} {
			e, err := Compile(ctx, src)
			if err != nil {
				t.Fatalf("%s: %v", f.rego, err)
			}
			in := inScopeAction()
			in.History = benchHistory()
			x, _ := prepare(PointAction, in)
			if r, err := e.Eval(ctx, x); err != nil || r.Effect != Allow {
				t.Errorf("%s %s: %+v %v", src.Engine, f.rego, r, err)
			}
			in.History = nil
			x, _ = prepare(PointAction, in)
			if r, _ := e.Eval(ctx, x); r.Effect == Allow {
				t.Errorf("%s %s: allowed on an empty history", src.Engine, f.rego)
			}
		}
	}
}

// TestHistoryAndActionCaches: the objects kept by value are always those
// of the values asked for, across collisions and repeats.
func TestHistoryAndActionCaches(t *testing.T) {
	plan := newHistoryPlan([][]string{{"task", "max_data_class_level"}, {"agent", "last_minute", "calls"}, {"resources", "resource_reached"}})
	uncached := &historyPlan{root: plan.root}
	if plan.leaves == nil {
		t.Fatal("the plan keeps no cache")
	}
	var actions actionCache
	members := cedarMembers{"action": {"operation": true, "tool": true}}
	for round := range 2 {
		for i := range 500 {
			h := benchHistory()
			h.Task.MaxDataClassLevel = i%5 - 1
			h.Agent.LastMinute.Calls = int64(i % 97)
			h.Resources.ResourceReached = i%3 == 0
			if got, want := plan.rego(h), uncached.rego(h); got.Value.Compare(want.Value) != 0 {
				t.Fatalf("round %d, %d: rego %v, want %v", round, i, got, want)
			}
			if got, want := plan.cedar(h), uncached.cedar(h); !got.Equal(want) {
				t.Fatalf("round %d, %d: cedar %v, want %v", round, i, got, want)
			}
			in := inScopeAction()
			in.Action.Tool = []string{"a", "b", "ab", ""}[i%4]
			in.Action.Operation = []string{"send", "read", "sendread", "b"}[i%7%4]
			if got, want := cedarContext(in, members, nil, &actions, nil), cedarContext(in, members, nil, nil, nil); !got.Equal(want) {
				t.Fatalf("round %d, %d: action %v, want %v", round, i, got, want)
			}
		}
	}
}
