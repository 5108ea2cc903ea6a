package evidence

import (
	"fmt"
	"slices"

	"github.com/writhq/writ/internal/ledger"
)

// Verify's side of completeness: whether the bundle holds every event of
// its tasks, by their chains (ledger/chain.go). docs/ledger.md specifies
// the check, so that an auditor's own verifier can make it.

// Completeness statuses, of a task and of a bundle (its tasks' worst).
const (
	// StatusComplete: the task has ended, and its chain is whole from the
	// newest of its events in the bundle back to its first event, every
	// link in the bundle and proven: no event of the task up to its end
	// (and up to that newest event) is left out.
	StatusComplete = "complete"
	// StatusCompleteToNewest: the same for a task that had not ended: no
	// event up to the newest in the bundle is left out. Events the task
	// had after it, up to the checkpoint, cannot be ruled out by the
	// chain, which points backwards only.
	StatusCompleteToNewest = "complete_to_newest"
	// StatusUnchained: the chain reaches an event written by a ledger
	// before task chains (envelope version 1), which names no previous
	// event: the events before it are not provably all there.
	StatusUnchained = "unchained"
	// StatusIncomplete: an event of the chain is not in the bundle (the
	// missing index is named), or a link did not verify.
	StatusIncomplete = "incomplete"
)

// statusRank orders the statuses from best to worst.
var statusRank = map[string]int{StatusComplete: 0, StatusCompleteToNewest: 1, StatusUnchained: 2, StatusIncomplete: 3}

// Completeness is what the bundle proves about the events it does not
// hold.
type Completeness struct {
	Status string `json:"status"`
	// Missing are the indexes of events the chains name that the bundle
	// does not hold, ascending.
	Missing []uint64           `json:"missing"`
	Tasks   []TaskCompleteness `json:"tasks"`
}

// TaskCompleteness is the chain of one of the bundle's tasks.
type TaskCompleteness struct {
	TaskID string `json:"task_id"`
	Status string `json:"status"`
	// Newest is the index of the task's newest event in the bundle, First
	// that of the oldest its chain reaches, Events how many the chain
	// links from one to the other.
	Newest uint64 `json:"newest"`
	First  uint64 `json:"first"`
	Events int    `json:"events"`
	// End is the index of the event that ended the task (task.completed,
	// task.expired, task.revoked, task.denied), when it has ended.
	End *uint64 `json:"end,omitempty"`
	// Missing is the index of the first event of the chain, from the
	// newest back, the bundle does not hold.
	Missing *uint64 `json:"missing,omitempty"`
	// Message says what the status means for this task.
	Message string `json:"message"`
}

// completeness follows the chain of every task of the bundle from its
// newest event back. Without a window, an event a chain names that the
// bundle does not hold is a failure naming its index; with one, actions
// outside it are left out by design, and the report says the bundle is
// incomplete without failing it. A link that no ledger writes (to another
// task's event, skipping an event of the bundle) is a failure either way.
func (v *verifier) completeness(require bool) {
	if v.allBad || v.present == nil {
		return
	}
	c := &Completeness{Status: StatusComplete, Missing: []uint64{}, Tasks: []TaskCompleteness{}}
	windowed := v.windowed()
	missing := func(i uint64, format string, a ...any) {
		c.Missing = append(c.Missing, i)
		if !windowed {
			idx := i
			v.rep.Failures = append(v.rep.Failures, Failure{Check: "complete", Index: &idx, Message: fmt.Sprintf(format, a...)})
		}
	}
	inTasks := map[string]bool{}
	for _, t := range v.m.Tasks {
		inTasks[t] = true
	}
	byTask := map[string][]uint64{}
	for _, e := range v.events {
		if e.Event.Type != "" && e.Event.TaskID != "" {
			byTask[e.Event.TaskID] = append(byTask[e.Event.TaskID], e.Index)
		}
	}
	// An event whose proof failed is in the bundle but not proven.
	unproven := map[uint64]bool{}
	for _, f := range v.rep.Failures {
		if f.Index != nil && f.Check == "proof" {
			unproven[*f.Index] = true
		}
	}
	for _, task := range v.m.Tasks {
		tc := v.taskChain(task, byTask[task], unproven, missing)
		c.Tasks = append(c.Tasks, tc)
		if statusRank[tc.Status] > statusRank[c.Status] {
			c.Status = tc.Status
		}
	}
	// Every child a task of the bundle delegated to is one of its tasks.
	for _, e := range v.events {
		if e.Event.Type != ledger.TypeTaskDelegated || !inTasks[e.Event.TaskID] {
			continue
		}
		if child := ledger.DelegatedChild(e.Event.Data); !inTasks[child] {
			v.fail("complete", "event %d delegates to task %s, which is not among the bundle's tasks: its events are left out", e.Index, child)
			c.Status = StatusIncomplete
		}
	}
	if require {
		for _, tc := range c.Tasks {
			if tc.Status != StatusComplete {
				v.fail("complete", "task %s is not proven complete to its end (%s): %s", tc.TaskID, tc.Status, tc.Message)
			}
		}
	}
	slices.Sort(c.Missing)
	c.Missing = slices.Compact(c.Missing)
	if c.Status == StatusUnchained {
		v.rep.Warnings = append(v.rep.Warnings, "some events were written before writ linked each task's events (envelope version 1): the bundle proves those are authentic, not that none of them was left out")
	}
	v.rep.Completeness = c
}

// taskChain walks one task's chain from its newest event in the bundle
// (idx, ascending) back to its first.
func (v *verifier) taskChain(task string, idx []uint64, unproven map[uint64]bool, missing func(uint64, string, ...any)) TaskCompleteness {
	tc := TaskCompleteness{TaskID: task}
	if len(idx) == 0 {
		tc.Status = StatusIncomplete
		tc.Message = "the bundle holds no event of the task"
		v.fail("complete", "the bundle holds no event of its task %s", task)
		return tc
	}
	tc.Newest = idx[len(idx)-1]
	onChain := map[uint64]bool{}
	delegationOK := true
	issued, revoked := map[string]bool{}, map[string]bool{}
	cur := tc.Newest
	for {
		k, ok := v.present[cur]
		if !ok {
			tc.Missing = &cur
			tc.Status = StatusIncomplete
			tc.Message = fmt.Sprintf("event %d of the task is not in the bundle (event %d names it as the task's previous event)", cur, tc.First)
			missing(cur, "event %d of task %s is not in the bundle: event %d names it as the task's previous event", cur, task, tc.First)
			return tc
		}
		e := v.events[k]
		if e.Event.Type == "" || unproven[cur] {
			tc.Status = StatusIncomplete
			tc.Message = fmt.Sprintf("event %d of the chain does not parse, or is not proven to be in the ledger", cur)
			return tc
		}
		if e.Event.TaskID != task {
			tc.Status = StatusIncomplete
			tc.Message = fmt.Sprintf("event %d names event %d, of another task, as the task's previous event", tc.First, cur)
			v.failEvent("complete", tc.First, "event %d of task %s names event %d, of task %q, as its previous event", tc.First, task, cur, e.Event.TaskID)
			return tc
		}
		onChain[cur] = true
		tc.First = cur
		tc.Events++
		switch e.Event.Type {
		case ledger.TypeCredentialIssued:
			issued[e.Event.JTI] = true
		case ledger.TypeCredentialRevoked:
			revoked[e.Event.JTI] = true
		}
		if ended(e.Event.Type) && tc.End == nil {
			end := cur
			tc.End = &end
		}
		if d := e.Event.Delegation; d != nil {
			delegationOK = v.delegation(task, cur, *d, missing)
		}
		if e.Event.Prev == nil {
			break
		}
		cur = *e.Event.Prev
	}
	if v.events[v.present[tc.First]].Version < 2 {
		tc.Status = StatusUnchained
		tc.Message = fmt.Sprintf("events before index %d were written before task chains; they are not provably all here", tc.First)
		return tc
	}
	// The chain from the newest event passes every event of the task: a
	// ledger never links past one.
	for _, i := range idx {
		if !onChain[i] {
			v.failEvent("complete", i, "event %d of task %s is not on the task's chain from its newest event %d: a link skips it", i, task, tc.Newest)
			tc.Status = StatusIncomplete
			tc.Message = fmt.Sprintf("a link of the chain skips event %d", i)
			return tc
		}
	}
	// Ending a task revokes its live credentials in the same commit,
	// after its end event: a credential of an ended task without its
	// revocation means the bundle leaves out events after the end.
	var unrevoked []string
	for jti := range issued {
		if tc.End != nil && !revoked[jti] {
			unrevoked = append(unrevoked, jti)
		}
	}
	slices.Sort(unrevoked)
	switch {
	case !delegationOK:
		tc.Status = StatusIncomplete
		tc.Message = fmt.Sprintf("the parent's task.delegated that the task's task.requested (%d) names is not here, or names another child", tc.First)
	case len(unrevoked) > 0:
		tc.Status = StatusIncomplete
		tc.Message = fmt.Sprintf("the task ended at %d, but the revocation of its credential %s, written when it ended, is not here", *tc.End, unrevoked[0])
		if !v.windowed() {
			v.fail("complete", "task %s ended at event %d, but the revocation of its credential %s is not in the bundle: ending a task revokes its credentials, so events after index %d are left out",
				task, *tc.End, unrevoked[0], *tc.End)
		}
	case tc.End != nil:
		tc.Status = StatusComplete
		tc.Message = fmt.Sprintf("every event of the task from its first (%d) through its end (%d) is here", tc.First, *tc.End)
		if tc.Newest > *tc.End {
			tc.Message += fmt.Sprintf(", and through event %d", tc.Newest)
		}
	default:
		tc.Status = StatusCompleteToNewest
		tc.Message = fmt.Sprintf("every event of the task from its first (%d) through event %d is here; the task had not ended, so later events, up to the checkpoint, cannot be ruled out", tc.First, tc.Newest)
	}
	return tc
}

// delegation checks the link of a child's task.requested (at req) to the
// parent's task.delegated (at d), and reports whether it holds.
func (v *verifier) delegation(task string, req, d uint64, missing func(uint64, string, ...any)) bool {
	k, ok := v.present[d]
	if !ok {
		missing(d, "event %d, the task.delegated that opened task %s (its task.requested %d names it), is not in the bundle", d, task, req)
		return false
	}
	e := v.events[k]
	if e.Event.Type != ledger.TypeTaskDelegated || ledger.DelegatedChild(e.Event.Data) != task {
		v.failEvent("complete", req, "event %d names event %d as the task.delegated that opened task %s, but it is a %s naming child %q",
			req, d, task, e.Event.Type, ledger.DelegatedChild(e.Event.Data))
		return false
	}
	return true
}

func (v *verifier) windowed() bool { return v.m.Window != nil }

// ended reports whether an event of type typ ends its task.
func ended(typ string) bool {
	switch typ {
	case ledger.TypeTaskCompleted, ledger.TypeTaskExpired, ledger.TypeTaskRevoked, ledger.TypeTaskDenied:
		return true
	}
	return false
}
