package policy

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRegoMemo checks that the default pack's results come from the memo
// once seen, and are exactly what an evaluation gives for every case of
// the agreement table, whatever a caller does with its copy.
func TestRegoMemo(t *testing.T) {
	src, _ := DefaultPack(EngineRego)
	e, err := compileRego(context.Background(), src, false)
	if err != nil {
		t.Fatal(err)
	}
	if e.memo == nil {
		t.Fatal("the default pack has no memo")
	}
	plain, err := compileRego(context.Background(), src, false)
	if err != nil {
		t.Fatal(err)
	}
	plain.memo = nil
	ctx := context.Background()
	for _, tc := range agreementCases() {
		in, _ := prepare(tc.point, &tc.in)
		want, err := plain.Eval(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for round := range 3 {
			got, err := e.Eval(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("%s, evaluation %d (-evaluated +memo):\n%s", tc.name, round+1, diff)
			}
			// What a caller does to its copy stays with it.
			if len(got.Reasons) > 0 {
				got.Reasons[0] = "changed"
			}
			if len(got.PolicyIDs) > 0 {
				got.PolicyIDs[0] = "changed"
			}
			if len(got.Obligations.Redact) > 0 {
				got.Obligations.Redact[0] = "changed"
			}
			if got.Obligations.RecordOutput != nil {
				*got.Obligations.RecordOutput = !*got.Obligations.RecordOutput
			}
		}
		doc := regoValue(in, e.paths, e.hist, &e.derived, &e.tasks)
		if _, ok := e.memo.get(doc); !ok {
			t.Fatalf("%s: not in the memo after its evaluation", tc.name)
		}
	}
}

// TestRegoMemoBound checks that the memo starts over when full.
func TestRegoMemoBound(t *testing.T) {
	src, _ := DefaultPack(EngineRego)
	e, err := compileRego(context.Background(), src, false)
	if err != nil {
		t.Fatal(err)
	}
	in := inScopeAction()
	for i := range memoSize + 10 {
		in.Agent.ID = "spiffe://example.org/agent/" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		x, _ := prepare(PointAction, in)
		if _, err := e.Eval(context.Background(), x); err != nil {
			t.Fatal(err)
		}
	}
	if e.memo.n != 10 {
		t.Errorf("memo holds %d entries after %d distinct documents, want 10", e.memo.n, memoSize+10)
	}
}

// TestRegoMemoOff checks which bundles are evaluated every time: those
// calling a nondeterministic or effectful built-in, or reading the
// request's time, which differs on every call.
func TestRegoMemoOff(t *testing.T) {
	tests := []struct {
		body string
		memo bool
	}{
		{`input.action.tool == "invoices.read"`, true},
		{`glob.match("invoices.*", [], input.action.tool)`, true},
		{`f(input.action.tool)`, true},
		{`time.now_ns() > 0`, false},
		{`x := time.now_ns(); x > 0`, false},
		{`rand.intn("k", 10) >= 0`, false},
		{`print(input.action.tool)`, false},
		{`g(1)`, false},
		{`input.request.time != ""`, false},
		{`count(input.request) > 0`, false},
		{`count(input) > 0`, false},
		{`input.request.environment == "dev"`, true},
	}
	for _, tt := range tests {
		helpers := "f(x) if startswith(x, \"invoices.\")\n"
		if strings.HasPrefix(tt.body, "g(") {
			helpers += "g(x) if uuid.rfc4122(\"k\") != \"\"\n"
		}
		src := Sources{Engine: EngineRego, Files: []File{{"p.rego", []byte(
			"package writ\n\ndecision := {\"permit\": [{\"id\": \"p\"}]} if {\n\t" + tt.body + "\n}\n\n" + helpers)}}}
		e, err := compileRego(context.Background(), src, false)
		if err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		if got := e.memo != nil; got != tt.memo {
			t.Errorf("%s: memo %v, want %v", tt.body, got, tt.memo)
		}
	}
}
