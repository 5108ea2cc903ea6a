package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// RegoQuery is the rule a Rego bundle must define: an object listing the
// rules that applied (deny, approval, permit), which writ folds as it folds
// Cedar's policies, or one naming the effect itself (see regoResult and
// docs/policy.md).
const RegoQuery = "data.writ.decision"

// regoDataFile, at the bundle root, is loaded as the data document (data.*).
const regoDataFile = "data.json"

type regoEngine struct {
	pq rego.PreparedEvalQuery
	// paths are the parts of input the modules read; nil means all.
	paths inputPaths
	// hist builds the parts of the history the modules read.
	hist    *historyPlan
	derived derivedCache[*ast.Term]
	tasks   taskCache[*ast.Term]
	// memo, when not nil, remembers results by input (regomemo.go).
	memo *regoMemo
}

// regoModules parses the bundle's policy modules (tests excluded unless
// withTests) as Rego v1.
func regoModules(src Sources, withTests bool) (map[string]*ast.Module, error) {
	mods := map[string]*ast.Module{}
	for _, f := range src.Files {
		if !strings.HasSuffix(f.Path, ".rego") {
			continue
		}
		if !withTests && strings.HasSuffix(f.Path, "_test.rego") {
			continue
		}
		m, err := ast.ParseModuleWithOpts(f.Path, string(f.Data), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, err
		}
		mods[f.Path] = m
	}
	if len(mods) == 0 {
		return nil, errors.New("no Rego policy modules (only tests?)")
	}
	return mods, nil
}

// regoStore builds the data document from data.json, if the bundle has one.
func regoStore(src Sources) (storage.Store, error) {
	data := map[string]any{}
	for _, f := range src.Files {
		if f.Path != regoDataFile {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(f.Data))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("%s: trailing data after the JSON object", f.Path)
		}
	}
	return inmem.NewFromObject(data), nil
}

// compileRego compiles the bundle once into a prepared query. strict turns
// on OPA's strict mode (unused variables and imports, deprecated built-ins),
// which check uses as a lint.
func compileRego(ctx context.Context, src Sources, strict bool) (*regoEngine, error) {
	mods, err := regoModules(src, false)
	if err != nil {
		return nil, err
	}
	if !definesDecision(mods) {
		return nil, fmt.Errorf("no module defines %s (package writ, rule decision)", RegoQuery)
	}
	store, err := regoStore(src)
	if err != nil {
		return nil, err
	}
	opts := []func(*rego.Rego){
		rego.Query(RegoQuery),
		rego.Store(store),
		rego.Strict(strict),
		rego.StrictBuiltinErrors(true),
		rego.SetRegoVersion(ast.RegoV1),
	}
	for _, m := range mods {
		opts = append(opts, rego.ParsedModule(m))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, err
	}
	paths := regoInputPaths(mods)
	return &regoEngine{pq: pq, paths: paths, hist: newHistoryPlan(regoHistoryPaths(mods, paths)), memo: newRegoMemo(mods, paths)}, nil
}

func definesDecision(mods map[string]*ast.Module) bool {
	want := ast.MustParseRef(RegoQuery)
	for _, m := range mods {
		for _, r := range m.Rules {
			if r.Ref().GroundPrefix().Equal(want) || m.Package.Path.Extend(r.Ref().GroundPrefix()).Equal(want) {
				return true
			}
		}
	}
	return false
}

// Per-evaluation options shared by every call: no metrics (OPA would
// otherwise allocate a set of timers per call) and the result handed back as
// the AST term it is, not converted to map[string]any first.
var (
	regoNoMetrics = rego.EvalMetrics(metrics.NoOp())
	regoRawResult = rego.EvalGenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil })
)

// Eval implements Engine: from the memo when it holds the document, else
// by evaluating it.
func (e *regoEngine) Eval(ctx context.Context, in *Input) (Result, error) {
	doc := regoValue(in, e.paths, e.hist, &e.derived, &e.tasks)
	if e.memo != nil {
		if r, ok := e.memo.get(doc); ok {
			return r, nil
		}
	}
	r, err := e.eval(ctx, doc)
	if err == nil && e.memo != nil {
		e.memo.put(doc, r)
	}
	return r, err
}

// eval evaluates the query on doc. Cancellation is wired with
// context.AfterFunc rather than OPA's default of one goroutine per
// evaluation waiting on ctx.
func (e *regoEngine) eval(ctx context.Context, doc ast.Value) (Result, error) {
	cancel := topdown.NewCancel()
	stop := context.AfterFunc(ctx, cancel.Cancel)
	defer stop()
	rs, err := e.pq.Eval(ctx,
		rego.EvalParsedInput(doc),
		rego.EvalExternalCancel(cancel),
		regoNoMetrics,
		regoRawResult,
	)
	if err != nil {
		return Result{}, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return Result{}, errors.New(RegoQuery + " is undefined")
	}
	t, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return Result{}, fmt.Errorf("%s: unexpected result %T", RegoQuery, rs[0].Expressions[0].Value)
	}
	return regoResult(t.Value)
}
