package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
)

// CasesFile is the bundle file holding engine-independent test cases: each
// an input document, the point, and the expected outcome. Both engines run
// it; it is the only test format for Cedar.
const CasesFile = "tests.json"

// Cases is the content of CasesFile.
type Cases struct {
	Cases []Case `json:"cases"`
}

// Case is one test case. Expect.Effect is required; the other expected
// fields are compared only when present.
type Case struct {
	Name   string `json:"name"`
	Point  Point  `json:"point"`
	Input  Input  `json:"input"`
	Expect Expect `json:"expect"`
}

// Expect is a case's expected outcome.
type Expect struct {
	Effect      Effect       `json:"effect"`
	Reasons     []string     `json:"reasons,omitempty"`
	PolicyIDs   []string     `json:"policy_ids,omitempty"`
	Obligations *Obligations `json:"obligations,omitempty"`
}

// ParseCases reads a cases file strictly: unknown fields, a missing name or
// effect, or an unknown point are errors.
func ParseCases(data []byte) (Cases, error) {
	var c Cases
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return Cases{}, fmt.Errorf("%s: %w", CasesFile, err)
	}
	if dec.More() {
		return Cases{}, fmt.Errorf("%s: trailing data after the JSON object", CasesFile)
	}
	seen := map[string]bool{}
	for i, tc := range c.Cases {
		switch {
		case tc.Name == "":
			return Cases{}, fmt.Errorf("%s: case %d has no name", CasesFile, i)
		case seen[tc.Name]:
			return Cases{}, fmt.Errorf("%s: duplicate case name %q", CasesFile, tc.Name)
		}
		seen[tc.Name] = true
		if _, err := ParsePoint(string(tc.Point)); err != nil {
			return Cases{}, fmt.Errorf("%s: case %q: %w", CasesFile, tc.Name, err)
		}
		if _, ok := parseEffect(string(tc.Expect.Effect)); !ok {
			return Cases{}, fmt.Errorf("%s: case %q: expect.effect %q: want allow, deny or require_approval", CasesFile, tc.Name, tc.Expect.Effect)
		}
	}
	return c, nil
}

// TestResult is the outcome of one bundle test.
type TestResult struct {
	Name string `json:"name"`
	Pass bool   `json:"pass"`
	// Message says what differed or failed.
	Message string `json:"message,omitempty"`
}

// RunTests runs the bundle's own tests: Rego test rules (test_* in
// *_test.rego, via OPA's tester) and the cases in tests.json, for either
// engine. It is an error for a bundle to have no tests at all.
func RunTests(ctx context.Context, src Sources) ([]TestResult, error) {
	eng, err := Compile(ctx, src)
	if err != nil {
		return nil, err
	}
	var results []TestResult
	if src.Engine == EngineRego {
		rs, err := runRegoTests(ctx, src)
		if err != nil {
			return nil, err
		}
		results = append(results, rs...)
	}
	for _, f := range src.Files {
		if f.Path != CasesFile {
			continue
		}
		cases, err := ParseCases(f.Data)
		if err != nil {
			return nil, err
		}
		l := &loaded{engine: eng, version: Version(src), name: src.Engine}
		for _, tc := range cases.Cases {
			d := decideOnce(ctx, l, tc.Point, &tc.Input, time.Second)
			results = append(results, checkCase(tc, d.Result))
		}
	}
	if len(results) == 0 {
		return nil, fmt.Errorf("no tests: add %s or (for Rego) *_test.rego", CasesFile)
	}
	return results, nil
}

func checkCase(tc Case, got Result) TestResult {
	tr := TestResult{Name: CasesFile + ": " + tc.Name, Pass: true}
	var diffs []string
	if got.Effect != tc.Expect.Effect {
		diffs = append(diffs, fmt.Sprintf("effect %s, want %s", got.Effect, tc.Expect.Effect))
	}
	if tc.Expect.Reasons != nil && !slices.Equal(got.Reasons, sortedSet(slices.Clone(tc.Expect.Reasons))) {
		diffs = append(diffs, fmt.Sprintf("reasons %q, want %q", got.Reasons, tc.Expect.Reasons))
	}
	if tc.Expect.PolicyIDs != nil && !slices.Equal(got.PolicyIDs, sortedSet(slices.Clone(tc.Expect.PolicyIDs))) {
		diffs = append(diffs, fmt.Sprintf("policy_ids %q, want %q", got.PolicyIDs, tc.Expect.PolicyIDs))
	}
	if w := tc.Expect.Obligations; w != nil {
		g := got.Obligations
		want := Result{Obligations: *w}
		want.Obligations.MaxTTL = time.Duration(w.MaxTTLSeconds) * time.Second
		want.Obligations.Redact = slices.Clone(w.Redact)
		want.normalize()
		gj, _ := json.Marshal(g)
		wj, _ := json.Marshal(want.Obligations)
		if !bytes.Equal(gj, wj) {
			diffs = append(diffs, fmt.Sprintf("obligations %s, want %s", gj, wj))
		}
	}
	if len(diffs) > 0 {
		tr.Pass = false
		tr.Message = strings.Join(diffs, "; ")
		if got.Effect == Deny && len(got.Reasons) > 0 && tc.Expect.Effect != Deny {
			tr.Message += " (reasons: " + strings.Join(got.Reasons, "; ") + ")"
		}
	}
	return tr
}

func newRegoTestCompiler(strict bool) *ast.Compiler {
	return ast.NewCompiler().
		WithStrict(strict).
		WithEnablePrintStatements(true).
		WithDefaultRegoVersion(ast.RegoV1)
}

func runRegoTests(ctx context.Context, src Sources) ([]TestResult, error) {
	mods, err := regoModules(src, true)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCompile, err)
	}
	store, err := regoStore(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCompile, err)
	}
	ch, err := tester.NewRunner().
		SetCompiler(newRegoTestCompiler(false)).
		SetStore(store).
		SetModules(mods).
		CapturePrintOutput(true).
		SetTimeout(10*time.Second).
		RunTests(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCompile, err)
	}
	var out []TestResult
	for r := range ch {
		tr := TestResult{Name: fmt.Sprintf("%s.%s", strings.TrimPrefix(r.Package, "data."), r.Name), Pass: r.Pass()}
		switch {
		case r.Error != nil:
			tr.Message = r.Error.Error()
		case r.Fail:
			tr.Message = "test rule is false or undefined"
			if r.Location != nil {
				tr.Message += " at " + r.Location.String()
			}
		}
		if len(r.Output) > 0 && !tr.Pass {
			tr.Message += "\n" + strings.TrimSpace(string(r.Output))
		}
		if r.Skip {
			continue
		}
		out = append(out, tr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
