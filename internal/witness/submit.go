package witness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/writhq/writ/internal/event"
	"time"

	"github.com/writhq/writ/internal/ledger"
)

// RefusalEvent is the data of a witness.refused event.
type RefusalEvent = event.WitnessRefused

// submit sends cp to p's witness, from the size it last cosigned, and
// keeps what comes of it: the cosignature, a refusal, or a failure to
// retry after a backoff.
func (l *Loop) submit(ctx context.Context, p *peer, old uint64, cp ledger.StoredCheckpoint) {
	xctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	c, _, err := exchange(xctx, p.client, l.cfg.Log.ReadTile, old, cp)
	cancel()
	now := l.cfg.Now()
	var refused *RefusedError
	switch {
	case err == nil:
		l.mu.Lock()
		st := p.state
		l.mu.Unlock()
		st.Size, st.CosignedAt = cp.Size, c.Time
		st.LastError, st.LastErrorAt, st.Failures, st.Refusal = "", time.Time{}, 0, nil
		if serr := l.cfg.Store.SaveCosignature(ctx, c, st); serr != nil {
			// Not kept, so not counted: the witness is asked again next
			// round (and answers 409 with the size it has).
			l.log.Error("witness loop: cannot store a cosignature; submitting again next round", "err", serr, "witness", p.w.Key.Name(), "size", cp.Size)
			l.mu.Lock()
			p.busy = false
			l.mu.Unlock()
			return
		}
		l.mu.Lock()
		p.state, p.busy, p.backoff = st, false, 0
		l.mu.Unlock()
		l.log.Debug("witness cosigned a checkpoint", "witness", p.w.Key.Name(), "size", cp.Size, "time", c.Time)
	case errors.As(err, &refused):
		l.refuse(ctx, p, cp.Size, refused, now)
	default:
		l.mu.Lock()
		p.backoff = min(max(2*p.backoff, l.cfg.Interval), l.cfg.MaxBackoff)
		p.next = now.Add(p.backoff)
		st := p.state
		st.LastError, st.LastErrorAt, st.Failures = clip(err.Error(), 300), now.UTC(), st.Failures+1
		p.state, p.busy = st, false
		wait := p.backoff
		l.mu.Unlock()
		if ctx.Err() != nil && l.stopping() {
			return // shutting down: the cancelled exchange says nothing of the witness
		}
		l.log.Warn("witness unreachable or failing; trying again after a backoff", "err", err, "witness", p.w.Key.Name(),
			"url", p.w.URL, "size", cp.Size, "failures", st.Failures, "retry_in", wait)
		if serr := l.cfg.Store.SaveWitnessState(ctx, st); serr != nil && ctx.Err() == nil {
			l.log.Warn("witness loop: cannot store the witness's state", "err", serr, "witness", p.w.Key.Name())
		}
	}
}

func (l *Loop) stopping() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// exchange is one add-checkpoint exchange: the submission of cp from
// old, and, when the witness answers 409 with another size, the one
// resubmission from that size the protocol calls for. A 409 that shows the
// log rolled back behind the witness, or its tree at the witness's size
// changed, is a refusal, and so is a refused consistency proof. It
// returns the size the witness had cosigned before it answered.
func exchange(ctx context.Context, c *Client, read ledger.TileReader, old uint64, cp ledger.StoredCheckpoint) (Cosignature, uint64, error) {
	if old > cp.Size {
		old = 0 // ask the witness where it stands
	}
	cs, err := send(ctx, c, read, old, cp)
	var conflict *ConflictError
	if !errors.As(err, &conflict) {
		return cs, old, withWitnessSize(err, old)
	}
	w := conflict.Size
	switch {
	case w > cp.Size:
		return Cosignature{}, w, &RefusedError{Reason: ReasonRollback, WitnessSize: &w,
			Detail: fmt.Sprintf("the witness has cosigned a tree of %d entries of this log, which now holds %d: the log was rolled back", w, cp.Size)}
	case w == old:
		return Cosignature{}, w, &RefusedError{Reason: ReasonFork, WitnessSize: &w,
			Detail: fmt.Sprintf("the witness has cosigned another tree of %d entries than this log's", w)}
	}
	cs, err = send(ctx, c, read, w, cp)
	if errors.As(err, &conflict) {
		return Cosignature{}, w, fmt.Errorf("the witness's size moved from %d to %d between two submissions (another process submits this log?)", w, conflict.Size)
	}
	return cs, w, withWitnessSize(err, w)
}

// withWitnessSize adds, to a refusal of a consistency proof from old, the
// size the witness has cosigned, and says what the refusal means.
func withWitnessSize(err error, old uint64) error {
	var r *RefusedError
	if errors.As(err, &r) && r.Status == 422 && old > 0 {
		r.Reason = ReasonFork
		r.WitnessSize = &old
		r.Detail = fmt.Sprintf("the witness refused the consistency proof from the %d entries it cosigned (%s): this log's tree of that size is not the one it saw", old, r.Detail)
	}
	return err
}

func send(ctx context.Context, c *Client, read ledger.TileReader, old uint64, cp ledger.StoredCheckpoint) (Cosignature, error) {
	var proof [][]byte
	if old > 0 && old < cp.Size {
		var err error
		proof, err = ledger.ConsistencyProof(ctx, read, old, cp.Size)
		if err != nil {
			return Cosignature{}, fmt.Errorf("consistency proof from %d to %d: %w", old, cp.Size, err)
		}
	}
	cs, err := c.AddCheckpoint(ctx, old, proof, cp.Note)
	cs.Size = cp.Size
	return cs, err
}

// refuse holds the witness, keeps the refusal in its state and records it
// in the ledger. The state is saved first: a refusal whose event could not
// be appended yet is recorded on a later round, or when the loop starts
// again.
func (l *Loop) refuse(ctx context.Context, p *peer, size uint64, r *RefusedError, now time.Time) {
	ref := &Refusal{At: now.UTC(), Status: r.Status, Reason: r.Reason, CheckpointSize: size, WitnessSize: r.WitnessSize, Detail: r.Detail}
	l.mu.Lock()
	st := p.state
	st.Refusal = ref
	p.state, p.held, p.busy = st, true, false
	l.mu.Unlock()
	args := []any{"witness", p.w.Key.Name(), "key", p.w.Key.String(), "url", p.w.URL, "reason", r.Reason,
		"checkpoint_size", size, "status", r.Status, "detail", r.Detail}
	if r.WitnessSize != nil {
		args = append(args, "witness_size", *r.WitnessSize)
	}
	l.log.Error("a witness refused the ledger's checkpoint; nothing more is sent to it until writ restarts (see docs/witnessing.md)", args...)
	if err := l.cfg.Store.SaveWitnessState(ctx, st); err != nil {
		l.log.Error("witness loop: cannot store the witness's refusal; recording it in the ledger all the same", "err", err, "witness", p.w.Key.Name())
	}
	l.recordPending(ctx)
}

// recordPending appends a witness.refused event for every refusal in the
// witnesses' states not recorded yet. A failure is retried next round.
func (l *Loop) recordPending(ctx context.Context) {
	l.rec.Lock()
	defer l.rec.Unlock()
	l.mu.Lock()
	type pending struct {
		p  *peer
		ev RefusalEvent
		at *Refusal
	}
	var todo []pending
	for _, p := range l.peers {
		r := p.state.Refusal
		if r == nil || r.Index != nil {
			continue
		}
		todo = append(todo, pending{p: p, at: r, ev: RefusalEvent{Witness: p.w.Key.Name(), Key: p.w.Key.String(), URL: p.w.URL,
			Status: r.Status, Reason: r.Reason, CheckpointSize: r.CheckpointSize, WitnessSize: r.WitnessSize, Detail: r.Detail}})
	}
	l.mu.Unlock()
	for _, t := range todo {
		data, err := json.Marshal(t.ev)
		if err != nil {
			l.log.Error("witness loop: cannot encode a refusal", "err", err)
			continue
		}
		idx, err := l.cfg.Recorder.Append(ctx, ledger.Event{Type: ledger.TypeWitnessRefused, Data: data})
		if err != nil {
			if ctx.Err() == nil {
				l.log.Error("witness loop: cannot record a witness's refusal in the ledger; trying again next round", "err", err, "witness", t.ev.Witness)
			}
			continue
		}
		l.mu.Lock()
		var st State
		if t.p.state.Refusal == t.at {
			r := *t.at
			r.Index = &idx
			t.p.state.Refusal = &r
		}
		st = t.p.state
		l.mu.Unlock()
		if err := l.cfg.Store.SaveWitnessState(ctx, st); err != nil {
			l.log.Warn("witness loop: cannot store the index of a recorded refusal", "err", err, "witness", t.ev.Witness, "index", idx)
		}
	}
}
