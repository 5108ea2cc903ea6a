package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
)

// Erasing bodies (docs/retention.md): on request, and for retention. Both
// go through the decision gate, as legal holds do (hold.go), so that
// whether a hold covers a body is decided in the same order the log
// records the hold and the erasure.

// Eraser erases stored bodies, each with its recorded erasure, in one
// transaction; *ledger.Ledger is one.
type Eraser interface {
	EraseAll(ctx context.Context, erasures []ledger.Erasure) (uint64, error)
}

// BodyErasure is one body to erase: the erasure to record, and the task of
// the event the body belongs to ("" for an event of no task), whose hold
// it must respect.
type BodyErasure struct {
	ledger.Erasure
	TaskID string
}

// applyErased lets go of a body the state keeps (a task's intent, a
// step-up's arguments) once its erasure is recorded, so that what was
// erased is not shown until the next start. An erasure is not a change
// to its task: it is neither checked nor counted among its events.
func (s *State) applyErased(e ledger.Entry) {
	var eb ledger.ErasedBody
	if json.Unmarshal(e.Event.Data, &eb) == nil {
		s.forgetBody(e.Event.TaskID, ledger.BodyRef{Index: eb.Index, Name: eb.Name})
	}
}

// forgetBody drops the state's copy of body ref of an event of task
// taskID, if it keeps one. Doing it twice does no harm.
func (s *State) forgetBody(taskID string, ref ledger.BodyRef) {
	t := s.tasks[taskID]
	if t == nil {
		return
	}
	switch {
	case ref.Name == "intent" && ref.Index == t.RequestedIndex:
		t.Intent = ""
	case ref.Name == "arguments":
		for _, a := range s.approvals {
			if a.TaskID == t.ID && a.RequestedIndex == ref.Index {
				a.Arguments = nil
			}
		}
	}
}

// forget drops the state's copies of the bodies just erased: the ledger
// recorded their erasure outside commit, so the state applies it here
// (with replicas, the follower applies it again).
func (s *Service) forget(xs []BodyErasure) {
	s.smu.Lock()
	defer s.smu.Unlock()
	for _, x := range xs {
		s.st.forgetBody(x.TaskID, x.Ref)
	}
}

// TaskClass returns the highest data class of a task's scope, as its
// request recorded it. A scope never changes, so only a task the state
// does not know yet makes it catch up with other replicas.
func (s *Service) TaskClass(taskID string) (string, bool) {
	class := func() (string, bool) {
		s.smu.Lock()
		defer s.smu.Unlock()
		if t := s.st.tasks[taskID]; t != nil {
			return t.Scope.DataClass, true
		}
		return "", false
	}
	if c, ok := class(); ok {
		return c, true
	}
	s.followForRead()
	return class()
}

// Tree returns a task and its descendants, the task first, or nil for an
// unknown task.
func (s *Service) Tree(taskID string) []string {
	s.smu.Lock()
	defer s.smu.Unlock()
	if s.st.tasks[taskID] == nil {
		return nil
	}
	out := []string{taskID}
	for i := 0; i < len(out); i++ {
		out = append(out, s.st.tasks[out[i]].Children...)
	}
	return out
}

// EraseBody erases one body on request (Config.Eraser), recording who and
// why. When a legal hold covers the task of the body's event, it refuses
// (ErrConflict, legal_hold), unless force: then the body is erased and the
// erasure records the hold it overrode. Errors of the ledger
// (ledger.ErrNotFound for a body never stored or already erased, a
// *ledger.ValidationError) are returned as they are.
func (s *Service) EraseBody(ctx context.Context, who identity.Principal, ref ledger.BodyRef, reason string, force bool) (uint64, error) {
	if s.cfg.Eraser == nil {
		return 0, errors.New("task: no eraser configured")
	}
	taskID, err := s.taskOf(ctx, ref.Index)
	if err != nil {
		return 0, err
	}
	if err := s.mu.Lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	x := ledger.Erasure{Ref: ref, Reason: reason, Principal: who.ID}
	s.smu.Lock()
	h, on := s.st.holdOn(s.st.tasks[taskID])
	s.smu.Unlock()
	if h != nil {
		if !force {
			return 0, newErr(ErrConflict, "legal_hold", "task %s is under the legal hold of task %s (event %d, by %s): its bodies are not erased; an admin may force the erasure, which records the hold it overrides",
				taskID, on, h.Index, h.By)
		}
		i := h.Index
		x.OverridesHold = &i
	}
	idx, err := s.cfg.Eraser.EraseAll(ctx, []ledger.Erasure{x})
	if err == nil {
		s.forget([]BodyErasure{{Erasure: x, TaskID: taskID}})
	}
	return idx, err
}

// taskOf returns the task_id of the event at index, "" for none.
func (s *Service) taskOf(ctx context.Context, index uint64) (string, error) {
	ent, err := entryAt(ctx, s.cfg.Store, index)
	return ent.Event.TaskID, err
}

// entryAt reads and parses the event at index; one not in the store is
// ledger.ErrNotFound.
func entryAt(ctx context.Context, store ledger.Store, index uint64) (ledger.Entry, error) {
	leaves, err := store.ReadLeaves(ctx, index, index+1)
	if err != nil {
		return ledger.Entry{}, err
	}
	if len(leaves) == 0 {
		return ledger.Entry{}, fmt.Errorf("event %d: %w", index, ledger.ErrNotFound)
	}
	return ledger.ParseLeaf(index, leaves[0])
}

// EraseUnheld erases the bodies xs name in one transaction, but those a
// legal hold covers, which it returns untouched; under the decision gate,
// so no hold is recorded between the check and the erasure. A body that is
// gone already (erased meanwhile) is left out, not an error: erased are the
// ones this call erased, each exactly once.
func (s *Service) EraseUnheld(ctx context.Context, xs []BodyErasure) (erased, held []BodyErasure, err error) {
	if s.cfg.Eraser == nil {
		return nil, nil, errors.New("task: no eraser configured")
	}
	if err := s.mu.Lock(ctx); err != nil {
		return nil, nil, err
	}
	defer s.mu.Unlock()
	var todo []BodyErasure
	s.smu.Lock()
	for _, x := range xs {
		if h, _ := s.st.holdOn(s.st.tasks[x.TaskID]); h != nil {
			held = append(held, x)
		} else {
			todo = append(todo, x)
		}
	}
	s.smu.Unlock()
	if len(todo) == 0 {
		return nil, held, nil
	}
	all := make([]ledger.Erasure, len(todo))
	for i, x := range todo {
		all[i] = x.Erasure
	}
	_, err = s.cfg.Eraser.EraseAll(ctx, all)
	if err == nil {
		s.forget(todo)
		return todo, held, nil
	}
	if !errors.Is(err, ledger.ErrNotFound) {
		return nil, held, err
	}
	// Some body is gone already: erase the rest one by one.
	for _, x := range todo {
		_, err := s.cfg.Eraser.EraseAll(ctx, []ledger.Erasure{x.Erasure})
		switch {
		case err == nil:
			erased = append(erased, x)
			s.forget([]BodyErasure{x})
		case !errors.Is(err, ledger.ErrNotFound):
			return erased, held, err
		}
	}
	return erased, held, nil
}
