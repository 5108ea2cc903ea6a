package task

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
)

// Trace returns every event of a task and its descendants in ledger order,
// each with its inclusion in the latest checkpoint proven. Events newer than
// that checkpoint are returned unverified; a proof that fails is an error.
func (s *Service) Trace(ctx context.Context, taskID string) (api.Trace, error) {
	s.smu.Lock()
	t := s.st.tasks[taskID]
	if t == nil {
		s.smu.Unlock()
		return api.Trace{}, notFound("no task %s", taskID)
	}
	var ids []string
	var idx []uint64
	var walk func(t *Task)
	walk = func(t *Task) {
		ids = append(ids, t.ID)
		idx = append(idx, t.Events...)
		for _, c := range t.Children {
			if ct := s.st.tasks[c]; ct != nil {
				walk(ct)
			}
		}
	}
	walk(t)
	s.smu.Unlock()
	slices.Sort(idx)
	idx = slices.Compact(idx)

	out := api.Trace{TaskID: taskID, Tasks: ids, Events: make([]api.TraceEvent, 0, len(idx))}
	var cp ledger.Checkpoint
	haveCP := false
	if s.cfg.Verifier != nil {
		stored, err := s.cfg.Store.LatestCheckpoint(ctx)
		switch {
		case errors.Is(err, ledger.ErrNotFound):
		case err != nil:
			return api.Trace{}, err
		default:
			cp, err = ledger.OpenCheckpoint(stored.Note, s.cfg.Origin, s.cfg.Verifier)
			if err != nil {
				return api.Trace{}, fmt.Errorf("%w: latest checkpoint: %v", ledger.ErrTampered, err)
			}
			haveCP = true
			out.CheckpointSize, out.Checkpoint = cp.Size, string(cp.Note)
		}
	}
	for _, i := range idx {
		leaves, err := s.cfg.Store.ReadLeaves(ctx, i, i+1)
		if err != nil {
			return api.Trace{}, err
		}
		if len(leaves) != 1 {
			return api.Trace{}, fmt.Errorf("%w: leaf %d of task %s is missing", ledger.ErrTampered, i, taskID)
		}
		leaf := slices.Clone(leaves[0])
		te := api.TraceEvent{Index: i, Event: leaf}
		if haveCP && i < cp.Size {
			hashes, err := ledger.InclusionProof(ctx, s.cfg.Store.ReadTile, i, cp.Size)
			if err != nil {
				return api.Trace{}, err
			}
			p := ledger.Proof{Index: i, Hashes: hashes, Checkpoint: cp.Note}
			if _, err := p.Verify(leaf, s.cfg.Origin, s.cfg.Verifier); err != nil {
				return api.Trace{}, fmt.Errorf("%w: event %d: %v", ledger.ErrTampered, i, err)
			}
			te.Verified = true
		}
		out.Events = append(out.Events, te)
	}
	return out, nil
}
