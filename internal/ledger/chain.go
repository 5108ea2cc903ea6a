package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// The task chain. Every event with a task_id names, in its leaf's "prev",
// the index of the task's previous event; the task's first event names
// none. A child task's task.requested also names, in "delegation", the
// index of its parent's task.delegated event, committed with it. An
// evidence bundle that holds a task's newest event can then be checked
// for every event before it, back to the task's first: omission is
// detectable by construction. The indexes are known only as the batch is
// sequenced, so the sequencer stamps them (docs/design/ledger.md).

// MaxLink is the largest index a link may name: 2^53-1, the largest
// integer an RFC 8785 number holds exactly.
const MaxLink = 1<<53 - 1

// linkSlots are where a leaf encoded without its task links takes them:
// the byte offsets at which "delegation" and "prev" belong, and whether a
// member precedes each (so the comma goes before the link, not after).
type linkSlots struct {
	delegation, prev           int
	delegationAfter, prevAfter bool
	// data and dataEnd bound the canonical data in the leaf (both 0
	// without data), which the commit hook hands on as it is.
	data, dataEnd int
}

// linkRoom is the most bytes the links add to a leaf of taskID.
func linkRoom(taskID string) int {
	if taskID == "" {
		return 0
	}
	return len(`,"delegation":`) + len(`,"prev":`) + 2*len(strconv.FormatUint(MaxLink, 10))
}

// withLinks returns leaf, encoded without links, with them: the canonical
// leaf of the same envelope with Delegation and Prev set.
func withLinks(leaf []byte, s linkSlots, delegation, prev *uint64) []byte {
	out := make([]byte, 0, len(leaf)+64)
	out = append(out, leaf[:s.delegation]...)
	if delegation != nil {
		out = appendLink(out, "delegation", *delegation, s.delegationAfter)
	}
	out = append(out, leaf[s.delegation:s.prev]...)
	if prev != nil {
		out = appendLink(out, "prev", *prev, s.prevAfter)
	}
	return append(out, leaf[s.prev:]...)
}

// appendLink writes one link member. A task event's leaf always has a
// member after each slot (task_id at least), so a link with none before
// it takes the comma after it.
func appendLink(dst []byte, name string, v uint64, after bool) []byte {
	if after {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	dst = strconv.AppendUint(dst, v, 10)
	if !after {
		dst = append(dst, ',')
	}
	return dst
}

// checkLinks checks a leaf's links against what the sequencer writes: only
// in version 2, only on a task's events, prev before the event,
// delegation only on task.requested and after it.
func checkLinks(index uint64, d *leafDoc) error {
	if d.Prev == nil && d.Delegation == nil {
		return nil
	}
	switch {
	case d.V < 2:
		return fmt.Errorf("task links in a version %d envelope", d.V)
	case d.TaskID == "":
		return errors.New("task links on an event of no task")
	case d.Prev != nil && (*d.Prev >= index || *d.Prev > MaxLink):
		return fmt.Errorf("prev %d does not name an earlier event", *d.Prev)
	case d.Delegation != nil && d.Type != TypeTaskRequested:
		return fmt.Errorf("delegation on a %s event (only a child task's task.requested has one)", d.Type)
	case d.Delegation != nil && (*d.Delegation <= index || *d.Delegation > MaxLink):
		return fmt.Errorf("delegation %d does not name a later event", *d.Delegation)
	}
	return nil
}

// DelegatedChild returns the child task a task.delegated event's data
// names (data.child_task_id), or "".
func DelegatedChild(data json.RawMessage) string {
	var d struct {
		Child string `json:"child_task_id"`
	}
	if json.Unmarshal(data, &d) != nil {
		return ""
	}
	return d.Child
}

// delegationOf returns the position in events of the parent's
// task.delegated event that the child's task.requested at i is linked to:
// the first after it of the parent task, which must name the child.
func delegationOf(events []Event, i int) (int, error) {
	e := &events[i]
	switch {
	case e.Type != TypeTaskRequested || e.TaskID == "":
		return 0, &ValidationError{Field: "parent", Reason: "only a child task's task.requested names a parent"}
	case e.Parent == e.TaskID:
		return 0, &ValidationError{Field: "parent", Reason: "a task is not its own parent"}
	}
	for k := i + 1; k < len(events); k++ {
		d := &events[k]
		if d.Type == TypeTaskDelegated && d.TaskID == e.Parent {
			if DelegatedChild(d.Data) != e.TaskID {
				break
			}
			return k, nil
		}
	}
	return 0, &ValidationError{Field: "parent", Reason: fmt.Sprintf("a child task's task.requested must be appended together with its parent %s's task.delegated naming it, after it", e.Parent)}
}

// taskHeads is the sequencer's view of the chains: the index of each
// task's newest event among the leaves [0, size), which the task's next
// event names as prev. batch holds the heads the batch being stamped
// moved, merged once it commits.
type taskHeads struct {
	last  map[string]uint64
	size  uint64
	batch map[string]uint64
}

func newTaskHeads() *taskHeads {
	return &taskHeads{last: map[string]uint64{}, batch: map[string]uint64{}}
}

// head returns the index of task's newest event, stamped or stored.
func (h *taskHeads) head(task string) (uint64, bool) {
	if i, ok := h.batch[task]; ok {
		return i, true
	}
	i, ok := h.last[task]
	return i, ok
}

// fold takes the stored leaf at index == size into account.
func (h *taskHeads) fold(index uint64, leaf []byte) error {
	if index != h.size {
		return fmt.Errorf("%w: leaf %d where leaf %d was expected", ErrTampered, index, h.size)
	}
	task, err := leafTaskID(leaf)
	if err != nil {
		return fmt.Errorf("%w: leaf %d: %v", ErrTampered, index, err)
	}
	if task != "" {
		h.last[task] = index
	}
	h.size++
	return nil
}

// commit merges the stamped batch, which ends at size.
func (h *taskHeads) commit(size uint64) {
	for t, i := range h.batch {
		h.last[t] = i
	}
	clear(h.batch)
	h.size = size
}

// leafTaskID reads the task_id of a stored leaf, without checking the
// rest (writ ledger verify does). It passes over the other members without
// decoding them: it runs for every stored leaf when the ledger opens.
func leafTaskID(leaf []byte) (string, error) {
	p := leafScanner{b: leaf}
	if !p.byte('{') {
		return "", errLeafSyntax
	}
	for first := true; !p.byte('}'); first = false {
		if !first && !p.byte(',') {
			return "", errLeafSyntax
		}
		key, ok := p.plainStr()
		if !ok || !p.byte(':') {
			d, err := decodeLeaf(leaf) // an escaped name: no leaf of writ's
			return d.TaskID, err
		}
		if string(key) == "task_id" {
			id, ok := p.str()
			if !ok {
				return "", errLeafSyntax
			}
			return id, nil
		}
		if _, ok := p.skip(); !ok {
			return "", errLeafSyntax
		}
	}
	return "", nil
}

// leafReader reads stored leaves: a Store, or a shared store's view under
// its write lock.
type leafReader interface {
	ReadLeaves(ctx context.Context, start, end uint64) ([][]byte, error)
}

// buildHeads reads every stored leaf's task at start. On a shared store it
// reads without the write lock: leaves are only ever appended, so what
// it reads stays true, and the sequencer reads the rest under the lock
// (syncHeads).
func (l *Ledger) buildHeads(ctx context.Context) error {
	h := newTaskHeads()
	err := l.cfg.Store.ScanLeaves(ctx, 0, func(i uint64, leaf []byte) error {
		return h.fold(i, leaf)
	})
	if err != nil {
		return fmt.Errorf("reading the task chains: %w", err)
	}
	l.heads = h
	return nil
}

// syncHeads brings the heads up to size to, reading through r the leaves
// other writers appended (or this one, in a commit whose outcome it
// could not learn).
func (l *Ledger) syncHeads(ctx context.Context, r leafReader, to uint64) error {
	h := l.heads
	if h.size > to {
		return fmt.Errorf("%w: the store holds %d events, fewer than the %d this ledger has read", ErrTampered, to, h.size)
	}
	for h.size < to {
		end := min(to, h.size+4096)
		leaves, err := r.ReadLeaves(ctx, h.size, end)
		if err != nil {
			return err
		}
		if len(leaves) == 0 {
			return fmt.Errorf("%w: leaf %d is missing", ErrTampered, h.size)
		}
		for _, leaf := range leaves {
			if err := h.fold(h.size, leaf); err != nil {
				return err
			}
		}
	}
	return nil
}
