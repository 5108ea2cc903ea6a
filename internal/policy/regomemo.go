package policy

import (
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// regoMemo remembers a compiled bundle's recent results by the exact input
// document they were evaluated on. A bundle whose rules call no
// nondeterministic built-in (time.now_ns, http.send, rand.intn, …, and
// print, which has an effect) and do not read the request's time decides
// the same document the same way every time: its modules and its data are
// fixed once compiled, and regoValue builds only the members the modules
// read. Calls of one task repeat the same pruned document (the default
// pack reads the point, the agent, the environment and the derived facts),
// so a decision costs a lookup instead of an evaluation, about a fifth of
// the CPU of an authorized call. The decision itself, its ID and its
// record, are made as before: only the evaluation is skipped. Errors are
// never remembered.
//
// Entries are found by the document's hash (kept by OPA as the object is
// built) and compared in full, so a collision cannot return another
// document's result. The memo holds at most memoSize entries and starts
// over when full.
type regoMemo struct {
	mu sync.Mutex
	m  map[int][]memoEntry
	n  int
}

type memoEntry struct {
	in  ast.Value
	res Result
}

const memoSize = 1024

// newRegoMemo returns a memo for the bundle of mods, which reads paths of
// the input, or nil when its results cannot be remembered.
func newRegoMemo(mods map[string]*ast.Module, paths inputPaths) *regoMemo {
	if !deterministicRego(mods) || readsTime(paths) {
		return nil
	}
	return &regoMemo{m: map[int][]memoEntry{}}
}

// readsTime reports whether the modules read request.time, which differs
// on every call (a memo of it would only miss).
func readsTime(paths inputPaths) bool {
	keys, want := paths.member("request")
	return want && (keys == nil || keys["time"])
}

// deterministicRego reports whether mods call only built-ins whose result
// depends on their arguments alone and that have no effect.
func deterministicRego(mods map[string]*ast.Module) bool {
	ok := true
	check := func(op ast.Ref) {
		name := op.String()
		if name == "print" || name == "trace" {
			ok = false
			return
		}
		if b, found := ast.BuiltinMap[name]; found && b.Nondeterministic {
			ok = false
		}
	}
	for _, m := range mods {
		ast.NewGenericVisitor(func(x any) bool {
			switch v := x.(type) {
			case *ast.Expr:
				if v.IsCall() {
					check(v.Operator())
				}
			case ast.Call:
				if len(v) > 0 {
					if op, isRef := v[0].Value.(ast.Ref); isRef {
						check(op)
					}
				}
			}
			return !ok
		}).Walk(m)
	}
	return ok
}

// get returns the result remembered for exactly in.
func (m *regoMemo) get(in ast.Value) (Result, bool) {
	h := in.Hash()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.m[h] {
		if e.in.Compare(in) == 0 {
			return e.res.clone(), true
		}
	}
	return Result{}, false
}

// put remembers res for in. Neither is modified afterwards: in is the
// document just evaluated, and res is copied out on every get.
func (m *regoMemo) put(in ast.Value, res Result) {
	h := in.Hash()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n >= memoSize {
		clear(m.m)
		m.n = 0
	}
	m.m[h] = append(m.m[h], memoEntry{in: in, res: res.clone()})
	m.n++
}

// clone copies r's slices, so that a caller changing its copy cannot
// change what the memo answers next.
func (r Result) clone() Result {
	r.Reasons = slices.Clone(r.Reasons)
	r.PolicyIDs = slices.Clone(r.PolicyIDs)
	r.Obligations.Redact = slices.Clone(r.Obligations.Redact)
	if r.Obligations.RecordOutput != nil {
		v := *r.Obligations.RecordOutput
		r.Obligations.RecordOutput = &v
	}
	return r
}
