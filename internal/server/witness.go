package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/witness"
)

// witnessing is the witness loop and what serving cosigned checkpoints
// needs; nil without witnesses configured.
type witnessing struct {
	loop      *witness.Loop
	store     witness.Store
	witnesses []witness.Witness
	keys      []string
	quorum    int
	interval  time.Duration
}

// Witnesses returns the configured witnesses, parsed. The configuration
// was validated, so a key that does not parse is a bug.
func Witnesses(cfg config.LedgerConfig) ([]witness.Witness, error) {
	var out []witness.Witness
	for i, w := range cfg.Witnesses {
		k, err := witness.ParseKey(w.Key)
		if err != nil {
			return nil, fmt.Errorf("ledger.witnesses[%d].key: %w", i, err)
		}
		out = append(out, witness.Witness{URL: w.SubmissionURL(), Key: k})
	}
	return out, nil
}

// newWitnessing prepares the witness loop; Serve starts it. On a shared
// store one replica at a time runs it (the store's lock service), and
// every replica serves the cosignatures the store holds.
func (s *Server) newWitnessing() error {
	if len(s.cfg.Ledger.Witnesses) == 0 {
		return nil
	}
	ws, ok := s.dir.Store.(witness.Store)
	if !ok {
		return fmt.Errorf("the %s store cannot keep witness cosignatures", s.dir.Backend)
	}
	witnesses, err := Witnesses(s.cfg.Ledger)
	if err != nil {
		return err
	}
	cfg := witness.Config{Witnesses: witnesses, Quorum: s.cfg.Ledger.Quorum(), Interval: s.cfg.Ledger.WitnessInterval,
		Log: s.dir.Store, Store: ws, Verifier: s.dir.Signer.Verifier(), Recorder: s.ledger,
		Logger: s.log.With("component", "witness")}
	if c := s.coordinator(); c != nil && s.dir.Backend == datadir.StorePostgres {
		cfg.Locker, cfg.Watch = c, c.Watch
	}
	loop, err := witness.New(cfg)
	if err != nil {
		return err
	}
	s.witness = &witnessing{loop: loop, store: ws, witnesses: witnesses, keys: loop.Keys(), quorum: loop.Quorum(),
		interval: s.cfg.Ledger.WitnessInterval}
	s.witnessLoop.Store(loop)
	return nil
}

// WitnessLoop returns the server's witness loop, or nil without witnesses.
func (s *Server) WitnessLoop() *witness.Loop {
	if s.witness == nil {
		return nil
	}
	return s.witness.loop
}

// closeWitnessing stops the loop after a last round for the checkpoint
// the ledger signed as it closed.
func (s *Server) closeWitnessing(ctx context.Context) error {
	if s.witness == nil {
		return nil
	}
	return s.witness.loop.Close(ctx)
}

// witnessEvidence makes evidence bundles carry the witnessed checkpoint,
// waiting a few witness intervals for one that covers the task.
func (s *Server) witnessEvidence(src *evidence.Source) {
	if s.witness == nil {
		return
	}
	src.Witnessed = witness.Newest(s.witness.store, s.witness.keys, s.witness.quorum)
	src.WitnessWait = 2*time.Second + 3*s.witness.interval
}

// witnessedCheckpoint serves, with witnesses configured, the newest
// checkpoint the quorum cosigned, with the cosignature lines after the
// log's signature, as a client with a witness policy verifies it.
func (s *Server) witnessedCheckpoint(w http.ResponseWriter, r *http.Request) {
	wd, err := witness.NewestWitnessed(r.Context(), s.witness.store, s.witness.keys, s.witness.quorum)
	if errors.Is(err, ledger.ErrNotFound) {
		w.Header().Set("Retry-After", "1")
		writeError(w, refusal.Unavailable, "not_yet_witnessed",
			fmt.Sprintf("no checkpoint is cosigned by %d of the configured witnesses yet; see GET /readyz and docs/witnessing.md", s.witness.quorum))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(wd.Note())
}

// witnessReadiness adds the witnesses' refusals to a ready answer: writ
// still records (readiness stays up), but its checkpoints are not being
// witnessed by those, and an operator must find out why.
func (s *Server) witnessReadiness(ctx context.Context, out map[string]any) {
	if s.witness == nil {
		return
	}
	st, err := witness.ReadStatus(ctx, s.witness.store, s.witness.witnesses, s.witness.quorum)
	if err != nil {
		s.log.ErrorContext(ctx, "readiness: cannot read the witnesses' state", "err", err)
		out["witnesses"] = "unknown: the witnesses' state could not be read"
		return
	}
	if st.Witnessed != nil {
		out["witnessed_size"] = st.Witnessed.Checkpoint.Size
	}
	type refusal struct {
		Witness        string    `json:"witness"`
		URL            string    `json:"url"`
		Reason         string    `json:"reason"`
		Status         int       `json:"status,omitempty"`
		CheckpointSize uint64    `json:"checkpoint_size"`
		WitnessSize    *uint64   `json:"witness_size,omitempty"`
		Detail         string    `json:"detail"`
		At             time.Time `json:"at"`
		Index          *uint64   `json:"index,omitempty"`
	}
	var refs []refusal
	for _, w := range st.Refusals() {
		r := w.State.Refusal
		refs = append(refs, refusal{Witness: w.Name, URL: w.State.URL, Reason: r.Reason, Status: r.Status, CheckpointSize: r.CheckpointSize,
			WitnessSize: r.WitnessSize, Detail: r.Detail, At: r.At, Index: r.Index})
	}
	if len(refs) > 0 {
		out["witness_refusals"] = refs
	}
}

// witnessTrace adds to a trace the newest witnessed checkpoint, once its
// cosignatures verify and the trace's checkpoint is shown to extend it,
// and how many of the trace's events it covers.
func (s *Server) witnessTrace(ctx context.Context, tr *api.Trace) error {
	if s.witness == nil || tr.Checkpoint == "" {
		return nil
	}
	wd, err := witness.NewestWitnessed(ctx, s.witness.store, s.witness.keys, s.witness.quorum)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	v := s.dir.Signer.Verifier()
	wcp, err := ledger.OpenCheckpoint(wd.Checkpoint.Note, s.dir.Origin, v)
	if err != nil {
		return fmt.Errorf("%w: witnessed checkpoint: %v", ledger.ErrTampered, err)
	}
	latest, err := ledger.OpenCheckpoint([]byte(tr.Checkpoint), s.dir.Origin, v)
	if err != nil {
		return fmt.Errorf("%w: latest checkpoint: %v", ledger.ErrTampered, err)
	}
	if wcp.Size > latest.Size {
		return nil // cosigned after the trace was read
	}
	if err := ledger.CheckConsistency(ctx, s.dir.Store.ReadTile, wcp, latest.Size, latest.Root); err != nil {
		return fmt.Errorf("%w: %v", ledger.ErrTampered, err)
	}
	tw := &api.TraceWitnessed{CheckpointSize: wcp.Size, Checkpoint: string(wd.Note()), Quorum: s.witness.quorum}
	for _, c := range wd.Cosignatures {
		for _, w := range s.witness.witnesses {
			if w.Key.String() != c.Key {
				continue
			}
			at, _, ok, err := w.Key.Find(wd.Note())
			if err != nil || !ok {
				return fmt.Errorf("%w: the stored cosignature of %s does not verify: %v", ledger.ErrTampered, w.Key.Name(), err)
			}
			tw.Cosignatures = append(tw.Cosignatures, api.TraceCosignature{Witness: w.Key.Name(), Key: c.Key, Time: at})
		}
	}
	for _, e := range tr.Events {
		if e.Verified && e.Index < wcp.Size {
			tw.Events++
		}
	}
	tr.Witnessed = tw
	return nil
}
