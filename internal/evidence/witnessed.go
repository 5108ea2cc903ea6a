package evidence

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/internal/ledger"
)

// bundleCheckpoint is the checkpoint a bundle's proofs are against: with
// witnesses, the newest one their quorum cosigned (its note carrying the
// cosignature lines, so each proof file does too), once it covers every
// entry, waiting up to WitnessWait; otherwise, or when none does in time,
// the latest checkpoint, without cosignatures.
func (src Source) bundleCheckpoint(ctx context.Context, origin string, v note.Verifier, entries []disclosed) (ledger.Checkpoint, error) {
	latest, err := coveringCheckpoint(ctx, src.Store, origin, v, entries, src.CheckpointWait)
	if err != nil || src.Witnessed == nil {
		return latest, err
	}
	var need uint64
	if n := len(entries); n > 0 {
		need = entries[n-1].Index + 1
	}
	wait := src.WitnessWait
	if wait == 0 {
		wait = 5 * time.Second
	}
	deadline := time.Now().Add(wait)
	for {
		w, err := src.Witnessed(ctx)
		switch {
		case errors.Is(err, ledger.ErrNotFound):
		case err != nil:
			return ledger.Checkpoint{}, err
		default:
			cp, err := ledger.OpenCheckpoint(w.Note, origin, v)
			if err != nil {
				return cp, fmt.Errorf("%w: witnessed checkpoint: %v", ledger.ErrTampered, err)
			}
			if cp.Size >= need {
				return cp, nil
			}
		}
		if time.Now().After(deadline) {
			return latest, nil
		}
		select {
		case <-ctx.Done():
			return ledger.Checkpoint{}, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}
