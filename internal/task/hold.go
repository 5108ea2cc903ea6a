package task

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/refusal"
)

// Legal holds (docs/retention.md). A hold on a task keeps every body of
// its events, and of its descendants' events, from being erased — by
// retention, and by request unless forced — until it is released. Placing
// and lifting one are changes to the task, recorded (task.held,
// task.released) and ordered with every other change by the decision
// gate; erasures take the gate too, so no erasure is recorded after a hold
// it had to respect.

// Hold is a legal hold on a task.
type Hold struct {
	// Index is the ledger index of the task.held event.
	Index  uint64
	By     string
	Reason string
	At     time.Time
}

// Release is a hold lifted: the task, and the index of its task.released.
type Release struct {
	TaskID string
	Index  uint64
}

func (s *State) applyHold(e ledger.Entry, t *Task) error {
	if e.Event.Type == ledger.TypeTaskHeld {
		var d event.TaskHeld
		if err := decode(e, &d); err != nil {
			return err
		}
		switch {
		case t.Hold != nil:
			return incoherent(e.Index, "task %s held while already held (event %d)", t.ID, t.Hold.Index)
		case d.By == "" || d.Reason == "":
			return incoherent(e.Index, "task.held of task %s without by or reason", t.ID)
		}
		t.Hold = &Hold{Index: e.Index, By: d.By, Reason: d.Reason, At: e.Event.Time}
		return nil
	}
	var d event.TaskReleased
	if err := decode(e, &d); err != nil {
		return err
	}
	switch {
	case t.Hold == nil || t.Hold.Index != d.Hold:
		return incoherent(e.Index, "task.released of task %s names hold %d, which is not the task's hold", t.ID, d.Hold)
	case d.By == "":
		return incoherent(e.Index, "task.released of task %s without by", t.ID)
	}
	t.Hold = nil
	s.releases = append(s.releases, Release{TaskID: t.ID, Index: e.Index})
	return nil
}

// HoldOn returns the hold covering task taskID — its own, or its nearest
// held ancestor's — and the task that hold is on.
func (s *State) HoldOn(taskID string) (Hold, string, bool) {
	h, on := s.holdOn(s.tasks[taskID])
	if h == nil {
		return Hold{}, "", false
	}
	return *h, on, true
}

func (s *State) holdOn(t *Task) (*Hold, string) {
	for ; t != nil; t = s.tasks[t.Parent] {
		if t.Hold != nil {
			return t.Hold, t.ID
		}
	}
	return nil, ""
}

func (s *State) holdView(t *Task) *api.TaskHold {
	h, on := s.holdOn(t)
	if h == nil {
		return nil
	}
	return &api.TaskHold{TaskID: on, By: h.By, Reason: h.Reason, At: h.At, LedgerIndex: h.Index}
}

// Hold places a legal hold on a task, in any state (an ended task's
// records are what a hold usually keeps): task.held. Auditors and admins
// may; reason is required (at most 1 KiB). A task already held is
// refused (ErrConflict, task_held).
func (s *Service) Hold(ctx context.Context, who identity.Principal, taskID, reason string) (Task, error) {
	return s.changeHold(ctx, who, taskID, reason, true)
}

// Release lifts a task's own legal hold: task.released. A hold of an
// ancestor is lifted on that ancestor. A task not held is refused
// (ErrConflict, task_not_held).
func (s *Service) Release(ctx context.Context, who identity.Principal, taskID, reason string) (Task, error) {
	return s.changeHold(ctx, who, taskID, reason, false)
}

func (s *Service) changeHold(ctx context.Context, who identity.Principal, taskID, reason string, hold bool) (Task, error) {
	if reason == "" || len(reason) > MaxReasonBytes || !utf8.ValidString(reason) {
		return Task{}, invalid("reason is required: valid UTF-8 of at most %d bytes", MaxReasonBytes)
	}
	if err := checkText("reason", reason); err != nil {
		return Task{}, err
	}
	if err := s.mu.Lock(ctx); err != nil {
		return Task{}, err
	}
	defer s.mu.Unlock()
	now := s.now()
	s.smu.Lock()
	t := s.st.tasks[taskID]
	var refused *refusal.Error
	switch {
	case t == nil || !s.st.sees(who, t, now):
		refused = notFound("no task %s", taskID)
	case !who.HasRole(identity.RoleAuditor) && !who.HasRole(identity.RoleAdmin):
		refused = newErr(ErrForbidden, "not_auditor", "only auditors and admins may place or lift a legal hold")
	case hold && t.Hold != nil:
		refused = newErr(ErrConflict, "task_held", "task %s is already held (event %d)", taskID, t.Hold.Index)
	case !hold && t.Hold == nil:
		refused = newErr(ErrConflict, "task_not_held", "task %s has no hold of its own to lift", taskID)
	}
	var ev ledger.Event
	if refused == nil {
		ev = ledger.Event{Type: ledger.TypeTaskHeld, Time: now, TaskID: t.ID, Principal: t.Requester, Agent: t.Agent,
			Data: mustJSON(event.TaskHeld{Reason: reason, By: who.ID})}
		if !hold {
			ev.Type = ledger.TypeTaskReleased
			ev.Data = mustJSON(event.TaskReleased{Reason: reason, By: who.ID, Hold: t.Hold.Index})
		}
	}
	s.smu.Unlock()
	if refused != nil {
		return Task{}, refused
	}
	if _, err := s.commit(ctx, []ledger.Event{ev}, stateOnly); err != nil {
		return Task{}, err
	}
	return s.Get(taskID)
}

// HoldOn returns the legal hold covering a task (its own or an
// ancestor's), if any.
func (s *Service) HoldOn(taskID string) (api.TaskHold, bool) {
	s.followForRead()
	s.smu.Lock()
	defer s.smu.Unlock()
	if v := s.st.holdView(s.st.tasks[taskID]); v != nil {
		return *v, true
	}
	return api.TaskHold{}, false
}

// HeldTask is a task under a hold of its own, with the tasks the hold
// covers: the task and its descendants.
type HeldTask struct {
	Hold   api.TaskHold
	Covers []string
}

// Holds returns the holds in force, in the order the tasks were requested.
func (s *Service) Holds() []HeldTask {
	s.followForRead()
	s.smu.Lock()
	defer s.smu.Unlock()
	var out []HeldTask
	for _, id := range s.st.order {
		t := s.st.tasks[id]
		if t.Hold == nil {
			continue
		}
		h := HeldTask{Hold: *s.st.holdView(t)}
		for i := []string{t.ID}; len(i) > 0; i = i[1:] {
			h.Covers = append(h.Covers, i[0])
			if c := s.st.tasks[i[0]]; c != nil {
				i = append(i, c.Children...)
			}
		}
		out = append(out, h)
	}
	return out
}

// ReleasedSince returns the holds lifted by events at index from or
// later, in log order.
func (s *Service) ReleasedSince(from uint64) []Release {
	s.followForRead()
	s.smu.Lock()
	defer s.smu.Unlock()
	var out []Release
	for _, r := range s.st.releases {
		if r.Index >= from {
			out = append(out, r)
		}
	}
	return out
}
