package task

import (
	"strings"
	"time"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
)

// taskHistory is what State keeps of a task's calls for policy's history
// (policy.History) and for its scope's limits: counters, updated as each
// event is applied, so that a decision reads them rather than the ledger.
type taskHistory struct {
	calls policy.Calls
	// tools and ops count by tool and by operation.
	tools, ops keyed[policy.Calls]
	// maxLevel is the highest data class level of an allowed call; -1
	// when none was.
	maxLevel int
	// win counts the calls of the last minute and hour: made at the first
	// call, dropped when the task ends, since no decision of an ended task
	// reads it (nearly 2 KiB a task).
	win *window
	// resources and destinations reached by allowed calls, at most
	// policy.MaxReached of each; their slices are nil until the first
	// allowed call (the snapshot says which).
	resources, destinations keyed[struct{}]
	// stepUps are the task's step-up approvals, in request order.
	stepUps []string
	// budget counts against the scope's limits; nil without limits.
	budget *budget
}

// budget counts a limited task's allowed calls, its descendants' included,
// against its scope's limits.
type budget struct {
	limits  *policy.Limits
	calls   int64
	keys    []string // per_tool patterns
	perTool []int64  // allowed calls of the tools each key matches
	minute  buckets
}

func newTaskHistory() *taskHistory {
	return &taskHistory{maxLevel: -1}
}

// hist returns t's history, made on first use.
func (s *State) hist(t *Task) *taskHistory {
	h := s.history[t.ID]
	if h == nil {
		h = newTaskHistory()
		s.history[t.ID] = h
	}
	return h
}

// noteRequested gives a task whose scope has limits its budget.
func (s *State) noteRequested(t *Task) {
	l := t.Scope.Limits
	if l == nil {
		return
	}
	b := &budget{limits: l}
	for k := range l.PerTool {
		b.keys = append(b.keys, k)
	}
	b.perTool = make([]int64, len(b.keys))
	s.hist(t).budget = b
}

// noteDecided counts a call decided under t: allowed (action.authorized)
// or denied (action.denied).
func (s *State) noteDecided(t *Task, e ledger.Entry, d *event.ActionDecided, allowed bool) {
	h := s.hist(t)
	at := e.Event.Time
	count := func(c *policy.Calls) {
		if allowed {
			c.Allowed++
			c.InFlight++
		} else {
			c.Denied++
		}
	}
	count(&h.calls)
	count(h.tools.put(d.Tool))
	count(h.ops.put(d.Operation))
	if h.win == nil {
		h.win = &window{}
	}
	h.win.add(at, allowed)
	s.agentWindow(t.Agent).add(at, allowed)
	if !allowed {
		return
	}
	level := policy.DataClassLevel(d.DataClass)
	if d.DataClass == "" {
		level = policy.DataClassLevel(t.Scope.DataClass)
	}
	h.maxLevel = max(h.maxLevel, level)
	reach(&h.resources, d.Resource)
	reach(&h.destinations, destination(d.Resource))
	// The call counts against the limits of its task and of every task it
	// was delegated from.
	for p := t; p != nil; p = s.tasks[p.Parent] {
		if ph := s.history[p.ID]; ph != nil && ph.budget != nil {
			ph.budget.spend(d.Tool, at)
		}
		if p.Parent == "" {
			break
		}
	}
	s.settle(d.ActionID)
}

// noteCompleted counts the result of an action of t, a call of tool and
// operation: no longer in flight.
func (s *State) noteCompleted(t *Task, tool, operation string) {
	h := s.history[t.ID]
	if h == nil {
		return
	}
	for _, c := range []*policy.Calls{&h.calls, h.tools.get(tool), h.ops.get(operation)} {
		if c != nil && c.InFlight > 0 {
			c.InFlight--
		}
	}
}

// noteStepUp remembers a step-up approval requested under t.
func (s *State) noteStepUp(t *Task, approvalID string) {
	h := s.hist(t)
	h.stepUps = append(h.stepUps, approvalID)
}

// forgetHistory drops what State keeps of an ended task's calls.
func (s *State) forgetHistory(taskID string) { delete(s.history, taskID) }

// forgetAgents drops the windows of agents without a call in the last two
// hours, which no decision counts any more.
func (s *State) forgetAgents(now time.Time) {
	for id, w := range s.agents {
		if w.stale(now) {
			delete(s.agents, id)
		}
	}
}

func (s *State) agentWindow(agent string) *window {
	w := s.agents[agent]
	if w == nil {
		w = &window{}
		s.agents[agent] = w
	}
	return w
}

// reach adds key to the set, up to policy.MaxReached keys.
func reach(set *keyed[struct{}], key string) {
	if set.s == nil {
		set.s = []keyedEntry[struct{}]{}
	}
	if set.len() < policy.MaxReached {
		set.put(key)
	}
}

// destination is a resource up to the end of its authority
// ("scheme://host[:port]"), or the whole resource when it has none.
func destination(res string) string {
	i := strings.Index(res, "://")
	if i < 0 {
		return res
	}
	if j := strings.IndexAny(res[i+3:], "/?#"); j >= 0 {
		return res[:i+3+j]
	}
	return res
}

// spend counts one allowed call of tool at t against the budget.
func (b *budget) spend(tool string, at time.Time) {
	b.calls++
	for i, k := range b.keys {
		if policy.Match(k, tool) {
			b.perTool[i]++
		}
	}
	b.minute.add(at.Unix(), true)
}

// HistoryOf returns the history policy sees for a call of tool, operation
// and resource (in normal form) under task taskID at now, as the events
// applied so far make it; false for an unknown task. Replaying a ledger up
// to a call's record gives the history that call was decided on, when no
// other call was decided meanwhile.
func (s *State) HistoryOf(taskID, tool, operation, res string, now time.Time) (*policy.History, bool) {
	t := s.tasks[taskID]
	if t == nil {
		return nil, false
	}
	return s.historyOf(t, tool, operation, res, now), true
}

// historyOf returns the history policy sees for a call of tool, operation
// and resource under t at now: read from the counters, nothing replayed.
// The caller holds smu (within Service).
func (s *State) historyOf(t *Task, tool, operation, res string, now time.Time) *policy.History {
	out := &policy.History{Version: policy.HistoryVersion, Task: policy.TaskHistory{MaxDataClassLevel: -1}}
	if w := s.agents[t.Agent]; w != nil {
		out.Agent = policy.AgentHistory{LastMinute: w.lastMinute(now), LastHour: w.lastHour(now)}
	}
	// Data read under a parent may have been handed to the child.
	for p := s.tasks[t.Parent]; p != nil; p = s.tasks[p.Parent] {
		if ph := s.history[p.ID]; ph != nil {
			out.Task.MaxDataClassLevel = max(out.Task.MaxDataClassLevel, ph.maxLevel)
		}
		if p.Parent == "" {
			break
		}
	}
	h := s.history[t.ID]
	if h != nil {
		out.Task.Calls = h.calls
		out.Task.Tools, out.Task.Operations = int64(h.tools.len()), int64(h.ops.len())
		out.Task.MaxDataClassLevel = max(out.Task.MaxDataClassLevel, h.maxLevel)
		if h.win != nil {
			out.Task.LastMinute, out.Task.LastHour = h.win.lastMinute(now), h.win.lastHour(now)
		}
		if c := h.tools.get(tool); c != nil {
			out.Tool = *c
		}
		if c := h.ops.get(operation); c != nil {
			out.Operation = *c
		}
		out.Resources = policy.Reach{Reached: int64(h.resources.len()), Destinations: int64(h.destinations.len()),
			ResourceReached: h.resources.has(res), DestinationReached: h.destinations.has(destination(res))}
		for _, id := range h.stepUps {
			a := s.approvals[id]
			switch {
			case a == nil:
			case a.UsedBy != "":
				out.Approvals.Spent++
			case a.Status == ApprovalDenied:
				out.Approvals.Denied++
			case now.After(a.ExpiresAt):
			case a.Status == ApprovalGranted:
				out.Approvals.Held++
			case a.Status == ApprovalPending:
				out.Approvals.Pending++
			}
		}
	}
	out.Task.MaxDataClass = dataClassName(out.Task.MaxDataClassLevel)
	return out
}

// dataClassName names a data class level; "" for -1.
func dataClassName(level int) string {
	switch level {
	case 0:
		return "public"
	case 1:
		return "internal"
	case 2:
		return "confidential"
	case 3:
		return "restricted"
	}
	return ""
}

// History returns the history policy would see now for a call of tool,
// operation and resource under task taskID, as this replica's state has
// it (no catch-up with other replicas); false for an unknown task.
func (s *Service) History(taskID, tool, operation, res string) (*policy.History, bool) {
	now := s.now()
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.st.HistoryOf(taskID, tool, operation, res, now)
}
