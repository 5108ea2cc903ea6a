package ledger

import (
	"maps"
	"slices"
)

// The task chain check of Verify: every link names what the sequencer
// would have named (chain.go).

// chainLink is what the chain check reads of one leaf.
type chainLink struct {
	task       string
	typ        string
	version    int
	prev       *uint64
	delegation *uint64
	child      string // of a task.delegated
}

func linkOf(e Entry) chainLink {
	l := chainLink{task: e.Event.TaskID, typ: e.Event.Type, version: e.Version, prev: e.Event.Prev, delegation: e.Event.Delegation}
	if l.typ == TypeTaskDelegated {
		l.child = DelegatedChild(e.Event.Data)
	}
	return l
}

// chainCheck follows the chains through the log in index order.
type chainCheck struct {
	r     *Report
	heads map[string]uint64 // task → index of its newest event so far
	// pending maps the index a child's task.requested names as its
	// delegation to that task.requested.
	pending    map[uint64]delegationLink
	unreadable map[uint64]bool
}

type delegationLink struct {
	index uint64
	task  string
}

func newChainCheck(r *Report) *chainCheck {
	return &chainCheck{r: r, heads: map[string]uint64{}, pending: map[uint64]delegationLink{}, unreadable: map[uint64]bool{}}
}

// add checks the next leaf's links against the events before it.
func (c *chainCheck) add(p parsed) {
	if p.err != nil {
		// Already a failure; a link to it is not reported again.
		c.unreadable[p.index] = true
		return
	}
	l := p.link
	if x, ok := c.pending[p.index]; ok {
		delete(c.pending, p.index)
		c.r.Links++
		if l.typ != TypeTaskDelegated || l.child != x.task {
			c.r.fail("chain", int64(x.index), "names event %d as the task.delegated that opened task %s, but event %d is a %s of task %q naming child %q",
				p.index, x.task, p.index, l.typ, l.task, l.child)
		}
	}
	if l.task == "" {
		return
	}
	last, seen := c.heads[l.task]
	if !seen {
		c.r.Tasks++
	}
	switch {
	case l.prev != nil:
		c.r.Links++
		switch {
		case c.unreadable[*l.prev]:
		case !seen:
			c.r.fail("chain", int64(p.index), "names event %d as the previous event of task %s, but it is the task's first event", *l.prev, l.task)
		case *l.prev != last:
			c.r.fail("chain", int64(p.index), "names event %d as the previous event of task %s, but the task's previous event is %d", *l.prev, l.task, last)
		}
	case seen && l.version >= 2:
		c.r.fail("chain", int64(p.index), "names no previous event, but event %d is of the same task %s", last, l.task)
	}
	if l.delegation != nil {
		c.pending[*l.delegation] = delegationLink{index: p.index, task: l.task}
	}
	c.heads[l.task] = p.index
}

// finish reports delegations that name events past the end of the log.
func (c *chainCheck) finish() {
	for _, d := range slices.Sorted(maps.Keys(c.pending)) {
		x := c.pending[d]
		c.r.fail("chain", int64(x.index), "names event %d as the task.delegated that opened task %s, but the log ends before it", d, x.task)
	}
}
