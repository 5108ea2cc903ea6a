package evidence

import (
	"context"
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
	var need uint64
	if n := len(entries); n > 0 {
		need = entries[n-1].Index + 1
	}
	latest, err := coveringCheckpoint(ctx, src.Store, origin, v, need, src.CheckpointWait)
	if err != nil || src.Witnessed == nil {
		return latest, err
	}
	wait := src.WitnessWait
	if wait == 0 {
		wait = 5 * time.Second
	}
	cp, ok, err := awaitCheckpoint(ctx, src.Witnessed, "witnessed", origin, v, need, wait, 25*time.Millisecond)
	if err == nil && !ok {
		return latest, nil
	}
	return cp, err
}
