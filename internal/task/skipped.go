package task

import (
	"errors"
	"fmt"
	"strings"

	"github.com/writhq/writ/internal/ledger"
)

// Skipped is an event in the ledger that the state machine cannot apply:
// it does not follow from the events before it (a task.completed for a task
// never activated, say). Such an event was not written by writ as it runs
// (writ applies every event it writes); it was appended around it, or
// forged before appends from outside were limited to import types. It
// stays in the log, which is still whole, but the state leaves it out.
type Skipped struct {
	Index  uint64 `json:"index"`
	Type   string `json:"type"`
	TaskID string `json:"task_id,omitempty"`
	// Reason says why it does not follow.
	Reason string `json:"reason"`
}

func (k Skipped) String() string {
	return fmt.Sprintf("event %d (%s): %s", k.Index, k.Type, k.Reason)
}

// maxSkippedKept bounds the skipped events State keeps the details of; the
// count goes on.
const maxSkippedKept = 1000

// Replay folds e into the state as Apply does, except that an event Apply
// refuses is noted as skipped (and returned) rather than stopping the
// replay: no event already in a ledger may keep writ from starting, and
// none is applied unless it follows from the events before it.
func (s *State) Replay(e ledger.Entry) *Skipped {
	err := s.Apply(e)
	if err == nil {
		return nil
	}
	k := Skipped{Index: e.Index, Type: e.Event.Type, TaskID: e.Event.TaskID, Reason: skipReason(err, e.Index)}
	if t := s.tasks[e.Event.TaskID]; t != nil {
		// It is still one of the task's events in the ledger: a trace or
		// an evidence bundle of the task shows it, and the bundle's
		// verification names it.
		s.events[t.ID].add(e.Index)
	}
	s.skippedN++
	if len(s.skipped) < maxSkippedKept {
		s.skipped = append(s.skipped, k)
	}
	return &k
}

// Skipped returns the events Replay skipped (the first maxSkippedKept) and
// how many it skipped in all.
func (s *State) Skipped() ([]Skipped, int) {
	return append([]Skipped(nil), s.skipped...), s.skippedN
}

func skipReason(err error, index uint64) string {
	msg := err.Error()
	if errors.Is(err, ErrIncoherent) {
		if _, after, ok := strings.Cut(msg, fmt.Sprintf("index %d: ", index)); ok {
			return after
		}
	}
	return msg
}

// SkippedEvents returns the events of the ledger the state machine skipped
// (at most the first thousand) and how many in all.
func (s *Service) SkippedEvents() ([]Skipped, int) {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.st.Skipped()
}

// logSkipped reports a skipped event loudly in the operational log; `writ
// ledger verify` reports it too, for as long as it is in the ledger.
func (s *Service) logSkipped(k *Skipped) {
	s.log.Error("ledger event skipped: it does not follow from the events before it, so the task state leaves it out; 'writ ledger verify' lists it",
		"index", k.Index, "type", k.Type, "task_id", k.TaskID, "reason", k.Reason)
}
