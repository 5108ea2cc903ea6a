package console

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/witness"
)

// ledgerState remembers the last full verification run from the console
// (in memory: a restart forgets it) and serializes runs.
type ledgerState struct {
	run  sync.Mutex // held while a verification runs
	mu   sync.Mutex
	last *verification
}

// verification is the outcome of one full ledger verification.
type verification struct {
	At       time.Time
	Took     time.Duration
	By       string
	OK       bool
	Error    string // the store could not be read
	Report   *ledger.Report
	Failures []string
}

// ledgerBody is the ledger page's data.
type ledgerBody struct {
	Origin, VerifierKey string
	Size                uint64
	Checkpoint          *ledger.Checkpoint
	CheckpointNote      string
	CheckpointError     string
	Last                *verification
	Running             bool
	// Witnessing is set with witnesses configured; WitnessError when their
	// state could not be read.
	Witnessing   *witness.Status
	WitnessError string
}

// ledgerPage shows the ledger's size, its latest signed checkpoint, the
// verifier key and the last full verification.
func (c *Console) ledgerPage(w http.ResponseWriter, r *http.Request, u user) {
	ctx := r.Context()
	body := ledgerBody{Origin: c.cfg.Origin, VerifierKey: c.cfg.VerifierKey}
	size, err := c.cfg.Store.Size(ctx)
	if err != nil {
		c.log.ErrorContext(ctx, "console: ledger size", "err", err)
		c.errorPage(w, r, &u, http.StatusServiceUnavailable, "Store unavailable", "The ledger store does not answer; see the server log.")
		return
	}
	body.Size = size
	stored, err := c.cfg.Store.LatestCheckpoint(ctx)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		body.CheckpointError = "No checkpoint has been signed yet."
	case err != nil:
		body.CheckpointError = "The latest checkpoint could not be read."
	case c.cfg.Verifier == nil:
		body.CheckpointError = "No verifier key is configured."
	default:
		cp, err := ledger.OpenCheckpoint(stored.Note, c.cfg.Origin, c.cfg.Verifier)
		if err != nil {
			body.CheckpointError = "The latest checkpoint does not verify: " + err.Error()
		} else {
			body.Checkpoint, body.CheckpointNote = &cp, string(stored.Note)
		}
	}
	if c.cfg.Witnesses != nil {
		st, err := c.cfg.Witnesses(ctx)
		if err != nil {
			c.log.ErrorContext(ctx, "console: witnesses' state", "err", err)
			body.WitnessError = "The witnesses' state could not be read; see the server log."
		}
		body.Witnessing = st
	}
	c.ledger.mu.Lock()
	body.Last = c.ledger.last
	c.ledger.mu.Unlock()
	if c.ledger.run.TryLock() {
		c.ledger.run.Unlock()
	} else {
		body.Running = true
	}
	c.render(w, r, &u, http.StatusOK, "ledger", "Ledger", "ledger", body)
}

// verifyLedger runs a full verification, as `writ ledger verify` does:
// every leaf, tile, checkpoint signature and payload commitment. One runs at
// a time; a second request waits for the first.
func (c *Console) verifyLedger(w http.ResponseWriter, r *http.Request, u user) {
	if c.cfg.Verifier == nil {
		c.errorPage(w, r, &u, http.StatusConflict, "Cannot verify", "No verifier key is configured.")
		return
	}
	v := c.runVerification(r.Context(), u.p.ID)
	switch {
	case v.Error != "":
		c.flash(u, "Verification could not finish: "+v.Error, true)
	case v.OK:
		c.flash(u, "The ledger verifies.", false)
	default:
		c.flash(u, "The ledger does NOT verify; see the failures below.", true)
	}
	http.Redirect(w, r, "/ui/ledger", http.StatusSeeOther)
}

func (c *Console) runVerification(ctx context.Context, by string) *verification {
	c.ledger.run.Lock()
	defer c.ledger.run.Unlock()
	start := c.now()
	rep, err := ledger.Verify(context.WithoutCancel(ctx), c.cfg.Store, c.cfg.Verifier, c.cfg.VerifierKey)
	v := &verification{At: start.UTC(), Took: c.now().Sub(start), By: by, Report: rep}
	if err != nil {
		c.log.ErrorContext(ctx, "console: ledger verification", "err", err)
		v.Error = "the store could not be read; see the server log"
	} else {
		v.OK = rep.OK()
		for _, f := range rep.Failures {
			v.Failures = append(v.Failures, f.String())
		}
	}
	c.ledger.mu.Lock()
	c.ledger.last = v
	c.ledger.mu.Unlock()
	return v
}
