package witness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/writhq/writ/internal/ledger"
)

// Store keeps cosignatures beside the checkpoints they cosign, and what
// writ knows of each witness, so that a restart (or another replica)
// resumes where the last left off and every replica serves the same
// cosignatures. The witness package owns this interface; store/sqlite and
// store/postgres implement it. Errors other than ledger.ErrNotFound mean
// the store could not be read or written; nothing was written then.
type Store interface {
	// SaveCosignature stores c beside its checkpoint and st as its
	// witness's state, in one transaction. When that witness's
	// cosignature of that checkpoint is already stored, the stored one
	// (the earlier) is kept and st is still saved.
	SaveCosignature(ctx context.Context, c Cosignature, st State) error
	// SaveWitnessState stores st, replacing its witness's state.
	SaveWitnessState(ctx context.Context, st State) error
	// WitnessStates returns every stored witness state in key order.
	WitnessStates(ctx context.Context) ([]State, error)
	// Cosignatures returns the stored cosignatures of the checkpoint of
	// the given size, in key order (none is not an error).
	Cosignatures(ctx context.Context, size uint64) ([]Cosignature, error)
	// ScanCosignatures calls fn for every stored cosignature in (size,
	// key) order.
	ScanCosignatures(ctx context.Context, fn func(Cosignature) error) error
	// NewestCosigned returns the size of the largest checkpoint
	// cosigned by at least quorum of keys, or ledger.ErrNotFound.
	NewestCosigned(ctx context.Context, keys []string, quorum int) (uint64, error)
	// ReadCheckpoint returns the stored checkpoint of the given size, or
	// ledger.ErrNotFound.
	ReadCheckpoint(ctx context.Context, size uint64) (ledger.StoredCheckpoint, error)
}

// State is what writ knows of one witness.
type State struct {
	// Key is the witness's verifier key; URL where it was reached.
	Key string `json:"key"`
	URL string `json:"url,omitempty"`
	// Size is the size of the checkpoint of this log the witness last
	// cosigned, as far as writ heard (0: none).
	Size uint64 `json:"size"`
	// CosignedAt is that cosignature's timestamp.
	CosignedAt time.Time `json:"cosigned_at,omitzero"`
	// LastError is the latest failure to get a cosignature (the witness
	// unreachable, slow, answering nonsense), cleared by the next
	// cosignature; Failures counts them in a row.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	Failures    int       `json:"failures,omitempty"`
	// Refusal is the witness's latest refusal, cleared by its next
	// cosignature (the event recording it stays in the ledger).
	Refusal *Refusal `json:"refusal,omitempty"`
}

// Refusal is a witness's refusal of a checkpoint.
type Refusal struct {
	At time.Time `json:"at"`
	// Status is the witness's HTTP answer (0 when worked out from a 409).
	Status int    `json:"status,omitempty"`
	Reason string `json:"reason"`
	// CheckpointSize is the size of the checkpoint refused; WitnessSize
	// the size the witness said it had cosigned, when it said.
	CheckpointSize uint64  `json:"checkpoint_size"`
	WitnessSize    *uint64 `json:"witness_size,omitempty"`
	Detail         string  `json:"detail"`
	// Index is the ledger index of the witness.refused event recording
	// it, once recorded.
	Index *uint64 `json:"index,omitempty"`
}

// EncodeState is the form a Store keeps a State in.
func EncodeState(st State) ([]byte, error) { return json.Marshal(st) }

// DecodeState reads what EncodeState wrote, strictly.
func DecodeState(b []byte) (State, error) {
	var st State
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return State{}, fmt.Errorf("stored witness state: %w", err)
	}
	return st, nil
}

// Witnessed is a checkpoint with its stored cosignatures.
type Witnessed struct {
	Checkpoint   ledger.StoredCheckpoint
	Cosignatures []Cosignature
}

// Note returns the checkpoint's signed note with its cosignature lines
// appended: what /ledger/checkpoint serves.
func (w Witnessed) Note() []byte { return Append(w.Checkpoint.Note, w.Cosignatures) }

// NewestWitnessed returns the newest checkpoint cosigned by at least
// quorum of keys, with the cosignatures by those keys, or
// ledger.ErrNotFound.
func NewestWitnessed(ctx context.Context, st Store, keys []string, quorum int) (Witnessed, error) {
	size, err := st.NewestCosigned(ctx, keys, quorum)
	if err != nil {
		return Witnessed{}, err
	}
	return WitnessedAt(ctx, st, size, keys)
}

// WitnessedAt returns the checkpoint of the given size with its stored
// cosignatures by keys (all stored ones when keys is nil).
func WitnessedAt(ctx context.Context, st Store, size uint64, keys []string) (Witnessed, error) {
	cp, err := st.ReadCheckpoint(ctx, size)
	if err != nil {
		return Witnessed{}, err
	}
	cs, err := st.Cosignatures(ctx, size)
	if err != nil {
		return Witnessed{}, err
	}
	w := Witnessed{Checkpoint: cp}
	for _, c := range cs {
		if keys == nil || slices.Contains(keys, c.Key) {
			w.Cosignatures = append(w.Cosignatures, c)
		}
	}
	return w, nil
}

// Newest returns a function that reads the newest checkpoint quorum of
// keys cosigned, its note carrying the cosignature lines, or
// ledger.ErrNotFound: what an evidence bundle carries.
func Newest(st Store, keys []string, quorum int) func(context.Context) (ledger.StoredCheckpoint, error) {
	return func(ctx context.Context) (ledger.StoredCheckpoint, error) {
		w, err := NewestWitnessed(ctx, st, keys, quorum)
		if err != nil {
			return ledger.StoredCheckpoint{}, err
		}
		return ledger.StoredCheckpoint{Size: w.Checkpoint.Size, Note: w.Note()}, nil
	}
}
