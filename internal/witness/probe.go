package witness

import (
	"context"
	"errors"

	"github.com/writhq/writ/internal/ledger"
)

// Probed is what a witness said of the log when probed.
type Probed struct {
	Witness string // its name
	Key     string
	URL     string
	// Reached is false when the witness could not be asked (Err says
	// why); its cosignatures are then checked from the store only.
	Reached bool
	Err     string
	// WitnessSize is the size of the log the witness had cosigned before
	// the probe.
	WitnessSize uint64
	// Cosignature is its cosignature of the checkpoint probed with, when
	// it gave one: the log extends everything it had cosigned.
	Cosignature *Cosignature
	// Refusal, when set, is a rollback or a fork as the witness sees it:
	// the log is not the one it cosigned.
	Refusal *RefusedError
}

// OK reports whether the witness vouched for the checkpoint.
func (p Probed) OK() bool { return p.Reached && p.Refusal == nil && p.Cosignature != nil }

// Probe asks a witness what it has cosigned of the log, the protocol's
// way: it submits cp (the log's latest checkpoint, already verified), from
// guess (the size writ last knew the witness at, or 0), and reads the 409
// or 200 answer. A witness that has cosigned more of the log than cp
// holds, or whose tree of its size is not this log's, refuses; one that
// cosigns cp vouches that the log extends everything it saw (and now
// holds cp as its latest, as if writ had submitted it). read gives the
// tiles the consistency proofs are built from.
func Probe(ctx context.Context, c *Client, read ledger.TileReader, cp ledger.StoredCheckpoint, guess uint64) Probed {
	p := Probed{Witness: c.Key.Name(), Key: c.Key.String(), URL: c.URL}
	cs, size, err := exchange(ctx, c, read, guess, cp)
	var refused *RefusedError
	switch {
	case err == nil:
		p.Reached, p.WitnessSize, p.Cosignature = true, size, &cs
	case errors.As(err, &refused) && refused.WitnessSize != nil:
		p.Reached, p.WitnessSize, p.Refusal = true, *refused.WitnessSize, refused
	case errors.As(err, &refused):
		// Refused for another reason than the log's history (an unknown
		// log, an untrusted key): the witness vouches for nothing.
		p.Reached, p.Err = true, refused.Error()
	default:
		p.Err = err.Error()
	}
	return p
}
