package policy

import (
	"slices"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/open-policy-agent/opa/v1/ast"
)

// The history object is built, for either engine, from one list of its
// leaves, and only the leaves a bundle's policies read: each object of
// the history costs a decision allocations in both engines (a Cedar
// record is copied and hashed when made), and a policy typically reads
// two or three of its forty-odd facts.

// historyLeaf is one fact of the history object: its path and how to read
// it (one of the three functions is set).
type historyLeaf struct {
	path    []string
	long    func(*History) int64
	text    func(*History) string
	boolean func(*History) bool
}

func longLeaf(f func(*History) int64, path ...string) historyLeaf {
	return historyLeaf{path: path, long: f}
}

func windowLeaves(w func(*History) *Window, path ...string) []historyLeaf {
	at := func(k string) []string { return append(slices.Clone(path), k) }
	return []historyLeaf{
		longLeaf(func(h *History) int64 { return w(h).Calls }, at("calls")...),
		longLeaf(func(h *History) int64 { return w(h).Allowed }, at("allowed")...),
		longLeaf(func(h *History) int64 { return w(h).Denied }, at("denied")...),
	}
}

func callsLeaves(c func(*History) *Calls, path ...string) []historyLeaf {
	at := func(k string) []string { return append(slices.Clone(path), k) }
	return []historyLeaf{
		longLeaf(func(h *History) int64 { return c(h).Allowed }, at("allowed")...),
		longLeaf(func(h *History) int64 { return c(h).Denied }, at("denied")...),
		longLeaf(func(h *History) int64 { return c(h).InFlight }, at("in_flight")...),
	}
}

// historyLeaves lists every fact of the history object, in the order of
// History's fields; docs/policy.md documents them.
var historyLeaves = slices.Concat(
	[]historyLeaf{longLeaf(func(h *History) int64 { return int64(h.Version) }, "version")},
	callsLeaves(func(h *History) *Calls { return &h.Task.Calls }, "task"),
	[]historyLeaf{
		longLeaf(func(h *History) int64 { return h.Task.Tools }, "task", "tools"),
		longLeaf(func(h *History) int64 { return h.Task.Operations }, "task", "operations"),
		{path: []string{"task", "max_data_class"}, text: func(h *History) string { return h.Task.MaxDataClass }},
		longLeaf(func(h *History) int64 { return int64(h.Task.MaxDataClassLevel) }, "task", "max_data_class_level"),
	},
	windowLeaves(func(h *History) *Window { return &h.Task.LastMinute }, "task", "last_minute"),
	windowLeaves(func(h *History) *Window { return &h.Task.LastHour }, "task", "last_hour"),
	callsLeaves(func(h *History) *Calls { return &h.Tool }, "tool"),
	callsLeaves(func(h *History) *Calls { return &h.Operation }, "operation"),
	windowLeaves(func(h *History) *Window { return &h.Agent.LastMinute }, "agent", "last_minute"),
	windowLeaves(func(h *History) *Window { return &h.Agent.LastHour }, "agent", "last_hour"),
	[]historyLeaf{
		longLeaf(func(h *History) int64 { return h.Resources.Reached }, "resources", "reached"),
		longLeaf(func(h *History) int64 { return h.Resources.Destinations }, "resources", "destinations"),
		{path: []string{"resources", "resource_reached"}, boolean: func(h *History) bool { return h.Resources.ResourceReached }},
		{path: []string{"resources", "destination_reached"}, boolean: func(h *History) bool { return h.Resources.DestinationReached }},
		longLeaf(func(h *History) int64 { return h.Approvals.Held }, "approvals", "held"),
		longLeaf(func(h *History) int64 { return h.Approvals.Spent }, "approvals", "spent"),
		longLeaf(func(h *History) int64 { return h.Approvals.Pending }, "approvals", "pending"),
		longLeaf(func(h *History) int64 { return h.Approvals.Denied }, "approvals", "denied"),
	},
)

// historyNode is one member of the history object as a plan builds it: a
// leaf, or an object of kids.
type historyNode struct {
	name    string
	regoKey *ast.Term
	leaf    *historyLeaf
	kids    []*historyNode
}

// historyPlan builds the parts of the history object a bundle reads, and
// keeps the empty history built once. When it builds only a few numbers
// and booleans (the default pack reads two), it also keeps the objects of
// the values it saw recently, as derivedCache does for the derived facts:
// a task's history changes by one call at a time, so the same few values
// come back decision after decision.
type historyPlan struct {
	root       historyNode
	emptyRego  *ast.Term
	emptyCedar types.Value
	// leaves are the facts built, when at most historyKeyLeaves numbers
	// and booleans; nil otherwise (no cache).
	leaves []*historyLeaf
	rcache historyCache[*ast.Term]
	ccache historyCache[types.Value]
}

// historyKeyLeaves bounds the facts a plan caches objects for.
const historyKeyLeaves = 6

// historyKey is the values of a plan's leaves.
type historyKey [historyKeyLeaves]int64

// historyCache keeps objects by the values they were built from.
type historyCache[T any] = slotCache[historyKey, T]

func (k historyKey) slotHash() uint64 {
	h := uint64(fnvOffset)
	for _, v := range k {
		h = fnv64(h, uint64(v))
	}
	return h
}

func (k historyKey) sameAs(o historyKey) bool { return k == o }

func (k historyKey) kept() historyKey { return k }

// key reads the values of p's leaves from h.
func (p *historyPlan) key(h *History) historyKey {
	var k historyKey
	for i, l := range p.leaves {
		if l.long != nil {
			k[i] = l.long(h)
		} else if l.boolean(h) {
			k[i] = 1
		}
	}
	return k
}

// newHistoryPlan plans the history object for the paths a bundle reads
// under history (each a list of member names; nil: the whole object).
// A leaf is built when a path read leads to it or through it.
func newHistoryPlan(read [][]string) *historyPlan {
	p := &historyPlan{root: historyNode{name: "history"}}
	for i := range historyLeaves {
		l := &historyLeaves[i]
		if read != nil && !slices.ContainsFunc(read, func(r []string) bool { return related(r, l.path) }) {
			continue
		}
		n := &p.root
		for _, name := range l.path {
			k := slices.IndexFunc(n.kids, func(c *historyNode) bool { return c.name == name })
			if k < 0 {
				n.kids = append(n.kids, &historyNode{name: name, regoKey: ast.StringTerm(name)})
				k = len(n.kids) - 1
			}
			n = n.kids[k]
		}
		n.leaf = l
	}
	p.emptyRego = p.root.rego(&emptyHistory)
	p.emptyCedar = p.root.cedar(&emptyHistory)
	p.leaves = p.root.cacheable(nil)
	return p
}

// cacheable appends n's leaves to out, or returns nil when n has a text
// leaf or more than historyKeyLeaves.
func (n *historyNode) cacheable(out []*historyLeaf) []*historyLeaf {
	if l := n.leaf; l != nil {
		if l.text != nil || len(out) == historyKeyLeaves {
			return nil
		}
		return append(out, l)
	}
	for _, k := range n.kids {
		if out = k.cacheable(out); out == nil {
			return nil
		}
	}
	if out == nil {
		out = []*historyLeaf{}
	}
	return out
}

// related reports whether one path is a prefix of the other.
func related(a, b []string) bool {
	n := min(len(a), len(b))
	return slices.Equal(a[:n], b[:n])
}

// rego builds the history object as a Rego term.
func (p *historyPlan) rego(h *History) *ast.Term {
	if p.leaves == nil {
		return p.root.rego(h)
	}
	k := p.key(h)
	return p.rcache.get(&k, func() *ast.Term { return p.root.rego(h) })
}

func (n *historyNode) rego(h *History) *ast.Term {
	if l := n.leaf; l != nil {
		switch {
		case l.long != nil:
			return ast.InternedTerm(l.long(h))
		case l.text != nil:
			return ast.InternedTerm(l.text(h))
		default:
			return ast.InternedTerm(l.boolean(h))
		}
	}
	o := ast.NewObjectWithCapacity(len(n.kids))
	for _, k := range n.kids {
		o.Insert(k.regoKey, k.rego(h))
	}
	return ast.NewTerm(o)
}

// cedar builds the history object as a Cedar record.
func (p *historyPlan) cedar(h *History) types.Value {
	if p.leaves == nil {
		return p.root.cedar(h)
	}
	k := p.key(h)
	return p.ccache.get(&k, func() types.Value { return p.root.cedar(h) })
}

func (n *historyNode) cedar(h *History) types.Value {
	if l := n.leaf; l != nil {
		switch {
		case l.long != nil:
			return types.Long(l.long(h))
		case l.text != nil:
			return types.String(l.text(h))
		default:
			return types.Boolean(l.boolean(h))
		}
	}
	m := make(types.RecordMap, len(n.kids))
	for _, k := range n.kids {
		m[types.String(k.name)] = k.cedar(h)
	}
	return types.NewRecord(m)
}

// fullHistory plans the whole history object, for a bundle that may read
// any of it.
var fullHistory = newHistoryPlan(nil)

// regoValueOf returns in's history as a Rego term: the empty one ready
// made when in has none. A nil plan builds it whole.
func (p *historyPlan) regoValueOf(in *Input) *ast.Term {
	if p == nil {
		p = fullHistory
	}
	if in.History == nil {
		return p.emptyRego
	}
	return p.rego(in.History)
}

// cedarValueOf returns in's history as a Cedar record. A nil plan builds
// it whole.
func (p *historyPlan) cedarValueOf(in *Input) types.Value {
	if p == nil {
		p = fullHistory
	}
	if in.History == nil {
		return p.emptyCedar
	}
	return p.cedar(in.History)
}
