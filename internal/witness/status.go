package witness

import (
	"context"
	"errors"
	"slices"

	"github.com/writhq/writ/internal/ledger"
)

// Status is the witnessing of a log as its store records it, for the
// console, /readyz and `writ ledger status`: every replica of a shared
// store reads the same.
type Status struct {
	Quorum    int
	Witnesses []WitnessStatus
	// Witnessed is the newest checkpoint cosigned by the quorum, or nil.
	Witnessed *Witnessed
}

// WitnessStatus is one witness's state.
type WitnessStatus struct {
	Name string
	// Configured is false for a witness the store knows of that is no
	// longer configured.
	Configured bool
	State      State
}

// Refusals returns the witnesses whose latest answer was a refusal.
func (s Status) Refusals() []WitnessStatus {
	var out []WitnessStatus
	for _, w := range s.Witnesses {
		if w.Configured && w.State.Refusal != nil {
			out = append(out, w)
		}
	}
	return out
}

// ReadStatus reads the witnesses' states and the newest witnessed
// checkpoint from st, for the configured witnesses ws and quorum. With no
// witnesses configured it lists every witness the store knows of.
func ReadStatus(ctx context.Context, st Store, ws []Witness, quorum int) (Status, error) {
	states, err := st.WitnessStates(ctx)
	if err != nil {
		return Status{}, err
	}
	out := Status{Quorum: quorum}
	var keys []string
	for _, w := range ws {
		ws := WitnessStatus{Name: w.Key.Name(), Configured: true, State: State{Key: w.Key.String(), URL: w.URL}}
		for _, s := range states {
			if s.Key == w.Key.String() {
				ws.State = s
			}
		}
		out.Witnesses = append(out.Witnesses, ws)
		keys = append(keys, w.Key.String())
	}
	for _, s := range states {
		if slices.Contains(keys, s.Key) {
			continue
		}
		name := s.Key
		if k, err := ParseKey(s.Key); err == nil {
			name = k.Name()
		}
		out.Witnesses = append(out.Witnesses, WitnessStatus{Name: name, State: s})
	}
	if len(keys) == 0 {
		return out, nil
	}
	w, err := NewestWitnessed(ctx, st, keys, quorum)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
	case err != nil:
		return Status{}, err
	default:
		out.Witnessed = &w
	}
	return out, nil
}
