package task

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
)

// Chain is a task's place in its delegation tree, as reconstruction needs
// it: the task and its descendants with every event of theirs, and the
// ancestors whose lifecycle the task's own events presuppose.
type Chain struct {
	// Tasks are the task and its descendants, the task first.
	Tasks []string
	// Ancestors are the task's parents, nearest last (the root first).
	Ancestors []string
	// Events are the ledger indexes of every event of Tasks, ascending.
	Events []uint64
	// AncestorEvents are the ledger indexes of every event of Ancestors,
	// ascending.
	AncestorEvents []uint64
}

// Chain returns taskID's chain, or ErrNotFound.
func (s *Service) Chain(taskID string) (Chain, error) {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.st.Chain(taskID)
}

// Chain returns taskID's chain as the state knows it, or ErrNotFound.
func (st *State) Chain(taskID string) (Chain, error) {
	t := st.tasks[taskID]
	if t == nil {
		return Chain{}, notFound("no task %s", taskID)
	}
	var c Chain
	var walk func(t *Task)
	walk = func(t *Task) {
		c.Tasks = append(c.Tasks, t.ID)
		c.Events = append(c.Events, st.events[t.ID].all()...)
		for _, id := range t.Children {
			if ct := st.tasks[id]; ct != nil {
				walk(ct)
			}
		}
	}
	walk(t)
	for p := st.tasks[t.Parent]; p != nil; p = st.tasks[p.Parent] {
		c.Ancestors = append(c.Ancestors, p.ID)
		c.AncestorEvents = append(c.AncestorEvents, st.events[p.ID].all()...)
	}
	slices.Reverse(c.Ancestors)
	for _, l := range []*[]uint64{&c.Events, &c.AncestorEvents} {
		slices.Sort(*l)
		*l = slices.Compact(*l)
	}
	return c, nil
}

// Trace returns every event of a task and its descendants in ledger order,
// each with its inclusion in the latest checkpoint proven. Events newer than
// that checkpoint are returned unverified; a proof that fails is an error.
func (s *Service) Trace(ctx context.Context, taskID string) (api.Trace, error) {
	c, err := s.Chain(taskID)
	if err != nil {
		return api.Trace{}, err
	}
	tr, err := ProveEvents(ctx, s.cfg.Store, s.cfg.Origin, s.cfg.Verifier, c.Events)
	if err != nil {
		return api.Trace{}, fmt.Errorf("trace of task %s: %w", taskID, err)
	}
	tr.TaskID, tr.Tasks = taskID, c.Tasks
	return tr, nil
}

// ProveEvents reads the events at idx (ascending) and proves each one's
// inclusion in the store's latest checkpoint, checked with v. Events newer
// than the checkpoint are returned unverified; with v nil, all are. A
// missing leaf or a proof that fails is an error wrapping
// ledger.ErrTampered. Tiles are read once for all the proofs.
func ProveEvents(ctx context.Context, st ledger.Store, origin string, v note.Verifier, idx []uint64) (api.Trace, error) {
	out := api.Trace{Events: make([]api.TraceEvent, 0, len(idx))}
	var cp ledger.Checkpoint
	haveCP := false
	if v != nil {
		stored, err := st.LatestCheckpoint(ctx)
		switch {
		case errors.Is(err, ledger.ErrNotFound):
		case err != nil:
			return api.Trace{}, err
		default:
			cp, err = ledger.OpenCheckpoint(stored.Note, origin, v)
			if err != nil {
				return api.Trace{}, fmt.Errorf("%w: latest checkpoint: %v", ledger.ErrTampered, err)
			}
			haveCP = true
			out.CheckpointSize, out.Checkpoint = cp.Size, string(cp.Note)
		}
	}
	tiles := map[ledger.TileID][]byte{}
	read := func(ctx context.Context, id ledger.TileID) ([]byte, error) {
		if b, ok := tiles[id]; ok {
			return b, nil
		}
		b, err := st.ReadTile(ctx, id)
		if err == nil {
			tiles[id] = b
		}
		return b, err
	}
	for _, run := range runs(idx) {
		leaves, err := st.ReadLeaves(ctx, run[0], run[1])
		if err != nil {
			return api.Trace{}, err
		}
		if uint64(len(leaves)) != run[1]-run[0] {
			return api.Trace{}, fmt.Errorf("%w: leaf %d is missing", ledger.ErrTampered, run[0]+uint64(len(leaves)))
		}
		for k, leaf := range leaves {
			i := run[0] + uint64(k)
			leaf = slices.Clone(leaf)
			te := api.TraceEvent{Index: i, Event: leaf}
			if haveCP && i < cp.Size {
				hashes, err := ledger.InclusionProof(ctx, read, i, cp.Size)
				if err != nil {
					return api.Trace{}, err
				}
				// The checkpoint's signature was checked once, above.
				if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, cp.Size, ledger.LeafHash(leaf), hashes, cp.Root); err != nil {
					return api.Trace{}, fmt.Errorf("%w: event %d: %v", ledger.ErrTampered, i, err)
				}
				te.Verified = true
			}
			out.Events = append(out.Events, te)
		}
	}
	return out, nil
}

// runs splits ascending indexes into [start, end) runs of consecutive ones,
// so neighbouring leaves are read together.
func runs(idx []uint64) [][2]uint64 {
	var out [][2]uint64
	for _, i := range idx {
		if n := len(out); n > 0 && out[n-1][1] == i {
			out[n-1][1]++
			continue
		}
		out = append(out, [2]uint64{i, i + 1})
	}
	return out
}
