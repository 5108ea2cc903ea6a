package witness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/internal/ledger"
)

// CheckOptions configure Check.
type CheckOptions struct {
	// Witnesses are the witnesses to check against; one without a URL is
	// checked from the store only.
	Witnesses []Witness
	Quorum    int
	// Latest is the log's latest checkpoint, already verified by the
	// caller against the recomputed tree; Verifier is the log's key and
	// Read gives the tiles the probes' consistency proofs come from.
	Latest   ledger.StoredCheckpoint
	Verifier note.Verifier
	Read     ledger.TileReader
	// Probe asks every witness with a URL what it has cosigned (Probe).
	Probe bool
	HTTP  *http.Client
}

// CheckReport is what Check found.
type CheckReport struct {
	Quorum int
	// Checked is the number of stored cosignatures verified; Others the
	// number by witnesses not given (not checked).
	Checked, Others int
	// Witnessed is the size of the newest stored checkpoint cosigned by
	// the quorum (HaveWitnessed false when none is).
	Witnessed     uint64
	HaveWitnessed bool
	// LatestSize is the latest checkpoint's size, and LatestCosigners the
	// keys of the witnesses that cosigned it, in the store or when probed.
	LatestSize      uint64
	LatestCosigners []string
	Probes          []Probed
	Failures        []string
}

// OK reports whether nothing failed.
func (r *CheckReport) OK() bool { return len(r.Failures) == 0 }

func (r *CheckReport) fail(format string, a ...any) {
	if len(r.Failures) < 100 {
		r.Failures = append(r.Failures, fmt.Sprintf(format, a...))
	}
}

// Check checks a log's witnessing: every stored cosignature by the given
// witnesses verifies over its stored checkpoint; the latest checkpoint is
// cosigned by the quorum; and, probing, each witness still finds the log
// consistent with what it cosigned. A log smaller than what a witness
// cosigned (a rollback) or not consistent with it (a fork) fails, naming
// the witness and both sizes; so does probing when fewer than the quorum
// of witnesses could be asked. It returns an error only when the store
// could not be read.
func Check(ctx context.Context, st Store, o CheckOptions) (*CheckReport, error) {
	r := &CheckReport{Quorum: o.Quorum, LatestSize: o.Latest.Size}
	origin := o.Verifier.Name()
	byKey := map[string]*Key{}
	var keys []string
	for _, w := range o.Witnesses {
		byKey[w.Key.String()], keys = w.Key, append(keys, w.Key.String())
	}
	texts := map[uint64][]byte{}
	err := st.ScanCosignatures(ctx, func(c Cosignature) error {
		k, ok := byKey[c.Key]
		if !ok {
			r.Others++
			return nil
		}
		text, ok := texts[c.Size]
		if !ok {
			cp, err := st.ReadCheckpoint(ctx, c.Size)
			if errors.Is(err, ledger.ErrNotFound) {
				r.fail("the cosignature by %s of size %d has no checkpoint of that size in the store", k.Name(), c.Size)
				return nil
			}
			if err != nil {
				return err
			}
			if _, err := ledger.OpenCheckpoint(cp.Note, origin, o.Verifier); err != nil {
				r.fail("the checkpoint of size %d cosigned by %s does not verify: %v", c.Size, k.Name(), err)
				return nil
			}
			if text, err = NoteText(cp.Note); err != nil {
				return err
			}
			texts = map[uint64][]byte{c.Size: text} // one size at a time: the scan is in size order
		}
		at, err := k.VerifyLine(text, c.Line)
		switch {
		case err != nil:
			r.fail("the stored cosignature by %s of the checkpoint of size %d does not verify: %v", k.Name(), c.Size, err)
		case !at.Equal(c.Time):
			r.fail("the stored cosignature by %s of size %d is recorded at %s but signed at %s", k.Name(), c.Size, c.Time, at)
		default:
			r.Checked++
			if c.Size == o.Latest.Size {
				r.LatestCosigners = append(r.LatestCosigners, c.Key)
			}
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	size, err := st.NewestCosigned(ctx, keys, o.Quorum)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
	case err != nil:
		return r, err
	default:
		r.Witnessed, r.HaveWitnessed = size, true
	}
	reached := 0
	if o.Probe {
		states, err := st.WitnessStates(ctx)
		if err != nil {
			return r, err
		}
		for _, w := range o.Witnesses {
			if w.URL == "" {
				continue
			}
			var guess uint64
			for _, s := range states {
				if s.Key == w.Key.String() {
					guess = s.Size
				}
			}
			p := Probe(ctx, &Client{URL: w.URL, Key: w.Key, HTTP: o.HTTP}, o.Read, o.Latest, guess)
			r.Probes = append(r.Probes, p)
			if p.Reached {
				reached++
			}
			switch {
			case p.Refusal != nil && p.Refusal.Reason == ReasonRollback:
				r.fail("witness %s: rollback: it has cosigned %d entries of this log, which holds %d", p.Witness, p.WitnessSize, o.Latest.Size)
			case p.Refusal != nil:
				r.fail("witness %s: fork: the %d entries it cosigned are not a prefix of this log of %d (%s)", p.Witness, p.WitnessSize, o.Latest.Size, p.Refusal.Detail)
			case p.OK() && !slices.Contains(r.LatestCosigners, p.Key):
				r.LatestCosigners = append(r.LatestCosigners, p.Key)
			}
		}
		if asked := len(r.Probes); asked > 0 && reached < o.Quorum {
			r.fail("only %d of the witnesses could be asked (quorum %d): a rollback or fork against what they cosigned cannot be ruled out", reached, o.Quorum)
		}
	}
	if n := len(r.LatestCosigners); n < o.Quorum {
		newest := "none is"
		if r.HaveWitnessed {
			newest = fmt.Sprintf("the newest that is has size %d", r.Witnessed)
		}
		r.fail("the latest checkpoint (size %d) is cosigned by %d of the witnesses, fewer than the quorum of %d (%s); a running server cosigns it within its witness interval",
			o.Latest.Size, n, o.Quorum, newest)
	}
	return r, nil
}
