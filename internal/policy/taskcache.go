package policy

import (
	"hash/maphash"
	"maps"
	"slices"
)

// taskCache keeps an engine's form of the input's task member (for Rego,
// its AST object) as built for a task's latest call. A task's member — its
// scope above all, a few lists of patterns — is the same on every call of
// the task, and was the largest part of the input left to build once the
// derived facts were cached. An entry is used only for a task equal in
// every field to the one it was built from, so a task whose member changes
// (its state, say) gets it built afresh; its slot is taken by task ID.
type taskCache[T any] = slotCache[Task, T]

var taskCacheSeed = maphash.MakeSeed()

func (t Task) slotHash() uint64 { return maphash.String(taskCacheSeed, t.ID) }

func (t Task) sameAs(o Task) bool { return sameTask(&t, &o) }

func (t Task) kept() Task { return cloneTask(&t) }

func sameTask(a, b *Task) bool {
	return a.ID == b.ID && a.Intent == b.Intent && a.TTL == b.TTL && a.State == b.State &&
		sameScope(&a.Scope, &b.Scope) &&
		slices.EqualFunc(a.ParentChain, b.ParentChain, func(x, y ParentTask) bool {
			return x.ID == y.ID && x.Agent == y.Agent && sameScope(&x.Scope, &y.Scope)
		})
}

func sameScope(a, b *Scope) bool {
	return slices.Equal(a.Tools, b.Tools) && slices.Equal(a.Resources, b.Resources) &&
		slices.Equal(a.Operations, b.Operations) && a.DataClass == b.DataClass &&
		slices.Equal(a.Environments, b.Environments) && sameLimits(a.Limits, b.Limits)
}

func sameLimits(a, b *Limits) bool {
	if a == nil || b == nil {
		return a == b
	}
	samePtr := func(x, y *int64) bool { return x == nil && y == nil || x != nil && y != nil && *x == *y }
	return samePtr(a.Calls, b.Calls) && samePtr(a.PerMinute, b.PerMinute) && maps.Equal(a.PerTool, b.PerTool)
}

// cloneTask copies t deeply enough that nothing the caller changes later
// reaches the copy.
func cloneTask(t *Task) Task {
	c := *t
	c.Scope = cloneScope(&t.Scope)
	if t.ParentChain != nil {
		c.ParentChain = make([]ParentTask, len(t.ParentChain))
		for i, p := range t.ParentChain {
			p.Scope = cloneScope(&p.Scope)
			c.ParentChain[i] = p
		}
	}
	return c
}

func cloneScope(s *Scope) Scope {
	c := *s
	c.Tools, c.Resources = slices.Clone(s.Tools), slices.Clone(s.Resources)
	c.Operations, c.Environments = slices.Clone(s.Operations), slices.Clone(s.Environments)
	if l := s.Limits; l != nil {
		cl := Limits{PerTool: maps.Clone(l.PerTool)}
		if l.Calls != nil {
			n := *l.Calls
			cl.Calls = &n
		}
		if l.PerMinute != nil {
			n := *l.PerMinute
			cl.PerMinute = &n
		}
		c.Limits = &cl
	}
	return c
}
