package task

import (
	"fmt"
	"strings"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/policy"
)

// MaxLimit bounds each of a scope's limits.
const MaxLimit = 1_000_000_000

// validateLimits reports limits that cannot be enforced: a limit below 1
// or above MaxLimit, an empty or overlong per_tool pattern, too many of
// them. nil is valid (no limits).
func validateLimits(l *api.Limits) error {
	if l == nil {
		return nil
	}
	for _, f := range []struct {
		name string
		v    *int64
	}{{"calls", l.Calls}, {"per_minute", l.PerMinute}} {
		if f.v != nil && (*f.v < 1 || *f.v > MaxLimit) {
			return invalid("scope.limits.%s is %d; want 1 to %d", f.name, *f.v, MaxLimit)
		}
	}
	if len(l.PerTool) > MaxPatterns {
		return invalid("scope.limits.per_tool has %d entries; the limit is %d", len(l.PerTool), MaxPatterns)
	}
	for tool, n := range l.PerTool {
		switch {
		case strings.TrimSpace(tool) == "":
			return invalid("scope.limits.per_tool holds an empty tool pattern")
		case len(tool) > MaxPatternBytes:
			return invalid("scope.limits.per_tool holds a tool pattern longer than %d bytes", MaxPatternBytes)
		case n < 1 || n > MaxLimit:
			return invalid("scope.limits.per_tool[%q] is %d; want 1 to %d", tool, n, MaxLimit)
		}
	}
	return nil
}

// normalizeLimits returns scope without an empty limits object: `{}`
// limits nothing, so the scope is recorded, and hashed, as one without.
func normalizeLimits(scope Scope) Scope {
	if l := scope.Limits; l != nil && l.Calls == nil && l.PerMinute == nil && len(l.PerTool) == 0 {
		scope.Limits = nil
	}
	return scope
}

// A hold is a call that policy allowed, reserved against the limits of
// its task and of the tasks it was delegated from while it is committed:
// counted as if already recorded, so that concurrent calls cannot pass a
// limit together. Applying its action.authorized settles it
// (noteDecided), in the same step that counts it; a call that was not
// committed is released by the Service. Holds are the one part of State
// that is not the ledger's: they live only while a call is decided.
type hold struct {
	tasks []string // the limited tasks of the chain
	tool  string
}

// held counts a limited task's holds, as its budget counts calls.
type held struct {
	calls   int64
	perTool []int64
}

// limitReached checks a call of tool under t at now against the limits of
// t and of its ancestors, holds included, and names the first it would
// pass, or returns nil. The caller holds smu.
func (s *State) limitReached(t *Task, tool string, now time.Time) *event.LimitReached {
	for p := t; p != nil; p = s.tasks[p.Parent] {
		if h := s.history[p.ID]; h != nil && h.budget != nil {
			if r := h.budget.reached(p.ID, s.held[p.ID], tool, now); r != nil {
				return r
			}
		}
		if p.Parent == "" {
			break
		}
	}
	return nil
}

// reached names the first limit of b that one more call of tool at now
// would pass, counting hd's holds too.
func (b *budget) reached(taskID string, hd *held, tool string, now time.Time) *event.LimitReached {
	var hc int64
	if hd != nil {
		hc = hd.calls
	}
	l := b.limits
	if l.Calls != nil && b.calls+hc >= *l.Calls {
		return &event.LimitReached{TaskID: taskID, Name: event.LimitCalls, Max: *l.Calls}
	}
	for i, k := range b.keys {
		if !policy.Match(k, tool) {
			continue
		}
		n := b.perTool[i]
		if hd != nil {
			n += hd.perTool[i]
		}
		if n >= l.PerTool[k] {
			return &event.LimitReached{TaskID: taskID, Name: event.LimitPerTool, Tool: k, Max: l.PerTool[k]}
		}
	}
	if l.PerMinute != nil && b.minute.since(now.Unix()-59).Allowed+hc >= *l.PerMinute {
		return &event.LimitReached{TaskID: taskID, Name: event.LimitPerMinute, Max: *l.PerMinute}
	}
	return nil
}

// limited reports whether t or an ancestor has limits.
func (s *State) limited(t *Task) bool {
	return s.limitedRoot(t) != ""
}

// limitedRoot returns the topmost task of t's chain whose scope has
// limits, or "". Two calls that share any limited task share it, so its
// name serializes them across replicas.
func (s *State) limitedRoot(t *Task) string {
	root := ""
	for p := t; p != nil; p = s.tasks[p.Parent] {
		if p.Scope.Limits != nil {
			root = p.ID
		}
		if p.Parent == "" {
			break
		}
	}
	return root
}

// reserve checks a call of tool under t at now against the limits and,
// when none would be passed, holds it under actionID. The caller holds
// smu.
func (s *State) reserve(actionID string, t *Task, tool string, now time.Time) *event.LimitReached {
	if r := s.limitReached(t, tool, now); r != nil {
		return r
	}
	hl := &hold{tool: tool}
	for p := t; p != nil; p = s.tasks[p.Parent] {
		if h := s.history[p.ID]; h != nil && h.budget != nil {
			hd := s.held[p.ID]
			if hd == nil {
				hd = &held{perTool: make([]int64, len(h.budget.keys))}
				s.held[p.ID] = hd
			}
			hd.calls++
			for i, k := range h.budget.keys {
				if policy.Match(k, tool) {
					hd.perTool[i]++
				}
			}
			hl.tasks = append(hl.tasks, p.ID)
		}
		if p.Parent == "" {
			break
		}
	}
	s.holds[actionID] = hl
	return nil
}

// settle lets go of the hold of actionID, if any: it was recorded (and is
// now counted) or will not be.
func (s *State) settle(actionID string) {
	hl := s.holds[actionID]
	if hl == nil {
		return
	}
	delete(s.holds, actionID)
	for _, id := range hl.tasks {
		hd := s.held[id]
		if hd == nil {
			continue
		}
		hd.calls--
		if h := s.history[id]; h != nil && h.budget != nil {
			for i, k := range h.budget.keys {
				if policy.Match(k, hl.tool) && hd.perTool[i] > 0 {
					hd.perTool[i]--
				}
			}
		}
		if hd.calls <= 0 {
			delete(s.held, id)
		}
	}
}

// limitReason is the reason answered for a call refused at limit r, from
// task t.
func limitReason(r *event.LimitReached, t *Task) string {
	var what string
	switch r.Name {
	case event.LimitCalls:
		what = fmt.Sprintf("limits.calls (%d calls)", r.Max)
	case event.LimitPerTool:
		what = fmt.Sprintf("limits.per_tool[%q] (%d calls)", r.Tool, r.Max)
	default:
		what = fmt.Sprintf("limits.per_minute (%d calls a minute)", r.Max)
	}
	if r.TaskID == t.ID {
		return "the task's scope limit " + what + " is reached"
	}
	return "the scope limit " + what + " of task " + r.TaskID + ", which this task was delegated from, is reached"
}
