package policy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

type panicEngine struct{}

func (panicEngine) Eval(context.Context, *Input) (Result, error) { panic("boom") }

type slowEngine struct{ d time.Duration }

func (e slowEngine) Eval(context.Context, *Input) (Result, error) {
	time.Sleep(e.d)
	return Result{Effect: Allow}, nil
}

type errEngine struct{}

func (errEngine) Eval(context.Context, *Input) (Result, error) { return Result{}, errors.New("kaput") }

func TestFailClosed(t *testing.T) {
	ctx := context.Background()
	regoBundle := func(body string) Engine {
		t.Helper()
		e, err := Compile(ctx, Sources{Engine: EngineRego, Files: []File{{"p.rego", []byte("package writ\n\n" + body)}}})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	cedarBundle := func(body string) Engine {
		t.Helper()
		e, err := Compile(ctx, Sources{Engine: EngineCedar, Files: []File{{"p.cedar", []byte(body)}}})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	tests := []struct {
		name    string
		engine  Engine
		timeout time.Duration
		reason  string
	}{
		{"panic", panicEngine{}, time.Second, "panicked: boom"},
		{"error", errEngine{}, time.Second, "kaput"},
		{"late answer", slowEngine{20 * time.Millisecond}, time.Millisecond, "exceeded the 1ms timeout"},
		{"rego undefined", regoBundle(`decision := {"effect": "allow"} if input.point == "never"`), time.Second, "undefined"},
		{"rego bad effect", regoBundle(`decision := {"effect": "maybe"}`), time.Second, `effect "maybe"`},
		{"rego bad obligation", regoBundle(`decision := {"effect": "allow", "obligations": {"max_ttl": -1}}`), time.Second, "max_ttl"},
		{"rego unknown obligation", regoBundle(`decision := {"effect": "allow", "obligations": {"launch": true}}`), time.Second, "unknown obligation"},
		{"rego runtime error", regoBundle(`decision := {"effect": "allow", "x": to_number(input.agent.id)}`), time.Second, "to_number"},
		{"rego conflict", regoBundle("decision := {\"effect\": \"allow\"} if true\ndecision := {\"effect\": \"deny\"} if true"), time.Second, "conflict"},
		{"rego timeout", regoBundle(`decision := {"effect": "allow", "n": count([x | some x in numbers.range(1, 100000000)])}`), time.Millisecond, "timeout"},
		{"cedar forbid error", cedarBundle(`permit (principal, action, resource);
@id("boom") forbid (principal, action, resource) when { context.task.nope == 1 };`), time.Second, "cedar policy boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decideOnce(ctx, &loaded{engine: tt.engine, name: "test"}, PointAction, inScopeAction(), tt.timeout)
			if d.Effect != Deny || len(d.Reasons) != 1 || !strings.HasPrefix(d.Reasons[0], "policy error: ") || !strings.Contains(d.Reasons[0], tt.reason) {
				t.Fatalf("decision %s %q, want deny with policy error mentioning %q", d.Effect, d.Reasons, tt.reason)
			}
		})
	}
}

func TestCedarPermitErrorDoesNotAllow(t *testing.T) {
	e, err := Compile(context.Background(), Sources{Engine: EngineCedar, Files: []File{{"p.cedar", []byte(
		`@id("p") permit (principal, action, resource) when { context.task.nope == 1 };`)}}})
	if err != nil {
		t.Fatal(err)
	}
	d := decideOnce(context.Background(), &loaded{engine: e}, PointAction, inScopeAction(), time.Second)
	if d.Effect != Deny {
		t.Fatalf("permit that errors allowed: %+v", d)
	}
}

func TestEvaluateAfterCloseDenies(t *testing.T) {
	p, err := New(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if d := p.Evaluate(context.Background(), PointAction, inScopeAction()); d.Effect != Deny {
		t.Fatalf("closed policy allowed: %+v", d)
	}
	if d := p.Evaluate(context.Background(), "bogus", inScopeAction()); d.Effect != Deny {
		t.Fatalf("unknown point allowed: %+v", d)
	}
}

func TestCompileErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		src  Sources
		want string
	}{
		{"rego without decision", Sources{Engine: EngineRego, Files: []File{{"p.rego", []byte("package writ\nallow := true")}}}, "data.writ.decision"},
		{"rego only tests", Sources{Engine: EngineRego, Files: []File{{"p_test.rego", []byte("package writ\ntest_x if true")}}}, "only tests"},
		{"rego bad data", Sources{Engine: EngineRego, Files: []File{{"p.rego", []byte("package writ\ndecision := {}")}, {"data.json", []byte("[1]")}}}, "data.json"},
		{"cedar duplicate id", Sources{Engine: EngineCedar, Files: []File{{"p.cedar", []byte(`@id("a") permit(principal, action, resource); @id("a") permit(principal, action, resource);`)}}}, "duplicate"},
		{"cedar effect on permit", Sources{Engine: EngineCedar, Files: []File{{"p.cedar", []byte(`@effect("require_approval") permit(principal, action, resource);`)}}}, "only a forbid"},
		{"cedar bad ttl", Sources{Engine: EngineCedar, Files: []File{{"p.cedar", []byte(`@max_ttl("forever") permit(principal, action, resource);`)}}}, "max_ttl"},
		{"cedar schema violation", Sources{Engine: EngineCedar, Files: []File{{"p.cedar", []byte(`permit(principal, action, resource) when { context.nope };`)}, {"s.cedarschema", []byte(`entity Agent; entity Tool; action "action" appliesTo { principal: Agent, resource: Tool, context: {} };`)}}}, "schema"},
		{"cedar bad entities", Sources{Engine: EngineCedar, Files: []File{{"p.cedar", []byte(`permit(principal, action, resource);`)}, {"entities.json", []byte(`{}`)}}}, "entities.json"},
		{"unknown engine", Sources{Engine: "opa"}, "unknown engine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(ctx, tt.src)
			if !errors.Is(err, ErrCompile) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Compile = %v, want ErrCompile mentioning %q", err, tt.want)
			}
		})
	}
}

func TestCheckLints(t *testing.T) {
	ctx := context.Background()
	unused := Sources{Engine: EngineRego, Files: []File{{"p.rego", []byte("package writ\n\ndecision := {\"effect\": \"deny\"} if {\n\tx := 1\n\tinput.a == 1\n}\n")}}}
	if _, err := Check(ctx, unused); err == nil || !strings.Contains(err.Error(), "strict") {
		t.Errorf("unused variable not reported: %v", err)
	}
	bare := Sources{Engine: EngineCedar, Files: []File{{"p.cedar", []byte("forbid(principal, action, resource);\n@id(\"x\") @color(\"red\") permit(principal, action, resource);")}}}
	warns, err := Check(ctx, bare)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(warns, "\n")
	for _, want := range []string{"no .cedarschema", "no @id", "no @reason", "@color"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings lack %q:\n%s", want, joined)
		}
	}
	for _, e := range []string{EngineRego, EngineCedar} {
		src, _ := DefaultPack(e)
		if warns, err := Check(ctx, src); err != nil || len(warns) > 0 {
			t.Errorf("default %s pack: %v %q", e, err, warns)
		}
	}
}

func TestDefaultPackOwnTests(t *testing.T) {
	for _, e := range []string{EngineRego, EngineCedar} {
		src, _ := DefaultPack(e)
		rs, err := RunTests(context.Background(), src)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) < 15 {
			t.Errorf("%s: only %d tests", e, len(rs))
		}
		for _, r := range rs {
			if !r.Pass {
				t.Errorf("%s %s: %s", e, r.Name, r.Message)
			}
		}
	}
}

func TestRunTestsReportsFailures(t *testing.T) {
	src, _ := DefaultPack(EngineCedar)
	bad := []byte(`{"cases": [{"name": "wrong", "point": "list", "input": {"agent": {"id": "a"}, "task": {"scope": {"tools": ["x"]}}, "action": {"tool": "y"}}, "expect": {"effect": "allow"}}]}`)
	rs, err := RunTests(context.Background(), withFiles(src, File{Path: CasesFile, Data: bad}))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Pass || !strings.Contains(rs[0].Message, "effect deny, want allow") {
		t.Fatalf("results %+v", rs)
	}
	rsrc, _ := DefaultPack(EngineRego)
	failing := File{Path: "extra_test.rego", Data: []byte("package writ_test\n\ntest_fails if false\n")}
	rs, err = RunTests(context.Background(), withFiles(rsrc, failing))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rs {
		if strings.HasSuffix(r.Name, "test_fails") {
			found = !r.Pass
		}
	}
	if !found {
		t.Fatal("failing Rego test not reported as failed")
	}
}
