package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/postgres"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/witness"
)

func ledgerCommand() *command {
	return &command{
		name:    "ledger",
		summary: "append to, prove and verify the evidence ledger",
		subs: []*command{
			ledgerVerifyCommand(),
			ledgerStatusCommand(),
			ledgerProofCommand(),
			ledgerKeyCommand(),
			ledgerAppendCommand(),
			ledgerEraseCommand(),
		},
	}
}

// snapshotter is a store that gives a consistent read-only view (the
// PostgreSQL store, which running replicas append to).
type snapshotter interface {
	Snapshot(ctx context.Context) (*postgres.Snapshot, error)
}

// openRead loads the configuration and opens its data directory for reading.
func (cf *configFlags) openRead(ctx context.Context, io IO) (config.Config, *datadir.Dir, error) {
	cfg, err := cf.load(io)
	if err != nil {
		return cfg, nil, err
	}
	if cfg.Postgres() {
		o, err := storeOptions(cfg, false)
		if err != nil {
			return cfg, nil, err
		}
		d, err := datadir.Open(ctx, cfg.DataDir, o)
		if errors.Is(err, datadir.ErrNoDir) {
			return cfg, nil, withHint(err, "check --dsn (or WRIT_DSN): it names a database no writ server has started on")
		}
		return cfg, d, err
	}
	d, err := openRead(ctx, cfg.DataDir)
	return cfg, d, err
}

// parseRead parses the flags of a command that only reads the data
// directory, checks that it has between min and max positional arguments
// and, when out is not nil, a valid -o, and opens the directory for
// reading. The caller closes the directory.
func (cf *configFlags) parseRead(ctx context.Context, c *command, io IO, args []string, min, max int, out *string) ([]string, config.Config, *datadir.Dir, error) {
	pos, err := parseArgs(c, cf.fs, args, min, max)
	if err != nil {
		return nil, config.Config{}, nil, err
	}
	if out != nil {
		if err := checkOutput(*out); err != nil {
			return nil, config.Config{}, nil, err
		}
	}
	cfg, d, err := cf.openRead(ctx, io)
	return pos, cfg, d, err
}

// openRead opens a data directory for reading, with a hint when it is not one.
func openRead(ctx context.Context, dir string) (*datadir.Dir, error) {
	d, err := datadir.Open(ctx, dir, datadir.Options{})
	if errors.Is(err, datadir.ErrNoDir) {
		return nil, withHint(err, "pass --data-dir DIR (the directory 'writ server' uses), or start a server first")
	}
	return d, err
}

func ledgerVerifyCommand() *command {
	c := &command{name: "verify", args: "[--data-dir DIR] [--key VKEY] [--witness KEY [--witness-url URL]]... [--quorum N] [-o table|json]",
		summary: "recompute the whole ledger and check every signature, tile and commitment"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		cf := addConfigFlags(fs)
		key := fs.String("key", "", "pin the verifier `key` (name+hash+base64) instead of trusting the one recorded in the store")
		since := fs.String("since", "", "a signed checkpoint `file` saved earlier (e.g. from /ledger/checkpoint): the ledger must extend it")
		out := fs.String("o", "table", "output `format`: table or json")
		wf := addWitnessFlags(fs, true)
		_, cfg, d, err := cf.parseRead(ctx, c, io, args, 0, 0, out)
		if err != nil {
			return err
		}
		defer d.Close()
		ws, quorum, err := wf.resolve(cfg.Ledger)
		if err != nil {
			return err
		}
		vkey := d.VerifierKey
		if *key != "" {
			vkey = strings.TrimSpace(*key)
		}
		v, err := ledger.NewVerifier(vkey)
		if err != nil {
			return withHint(err, "a verifier key looks like origin+1a2b3c4d+AbCd…; 'writ ledger key' prints it")
		}
		var st ledger.Store = d.Store
		if sn, ok := d.Store.(snapshotter); ok {
			// Replicas may be appending: read one consistent view.
			snap, err := sn.Snapshot(ctx)
			if err != nil {
				return fmt.Errorf("reading the ledger: %w", err)
			}
			defer snap.Close()
			st = snap
		}
		rep, err := ledger.Verify(ctx, st, v, vkey)
		if err != nil {
			return fmt.Errorf("reading the ledger: %w", err)
		}
		if *since != "" {
			if f := checkSince(ctx, d, v, *since, rep); f != nil {
				rep.Failures = append(rep.Failures, *f)
			}
		}
		if *key != "" && vkey != d.VerifierKey {
			rep.Failures = append(rep.Failures, ledger.Failure{Check: "key", Index: -1,
				Detail: fmt.Sprintf("the store records verifier key %s, not the pinned one", d.VerifierKey)})
		}
		// Every event must follow from the events before it, and the task,
		// approval and credential tables must agree with what the events
		// imply (they are projections of the ledger).
		chk, perr := task.CheckLedger(ctx, d.Store, d.Store.DB())
		if perr != nil {
			chk.Projections = []string{"cannot replay the ledger and check the projection tables: " + perr.Error()}
		}
		// Cosignatures, and what the witnesses cosigned (ledger_witness.go).
		var wr *witness.CheckReport
		if len(ws) > 0 {
			if wr, err = checkWitnessing(ctx, d, v, rep, ws, quorum); err != nil {
				return err
			}
		}
		if *out == "json" {
			printVerifyJSON(io, rep, chk, witnessReportJSON(wr, ws))
		} else {
			printVerifyTable(io, rep, chk)
			if wr != nil {
				printWitnessTable(io, wr, ws, verifyMark)
			}
			printVerifyProblems(io, rep, chk)
		}
		if !rep.OK() {
			n := len(rep.Failures) + rep.Truncated
			if onlyWitnessFailures(rep) {
				return withHint(fmt.Errorf("ledger verification failed: %d problem(s) with its witnessing", n),
					"the store is whole, but the witnesses do not vouch for it: a witness that cosigned a longer or another history of this log means the store was rolled back or forked (docs/witnessing.md)")
			}
			return withHint(fmt.Errorf("ledger verification failed: %d problem(s)", n),
				"the ledger at %s does not match its signed checkpoints; treat it as tampered with and restore from backup", cfg.DataDir)
		}
		if chk.SkippedCount > 0 {
			return withHint(fmt.Errorf("ledger verification failed: the log is whole and signed, but %d event(s) do not follow from the events before them (first: %s)", chk.SkippedCount, chk.Skipped[0]),
				"writ did not write these as it ran (appended around it, or forged before outside appends were limited to import.* types); the server skips them at start and leaves them out of the task state: find out who appended them")
		}
		if len(chk.Projections) > 0 {
			return withHint(fmt.Errorf("ledger verification failed: %d projection row(s) disagree with the ledger", len(chk.Projections)),
				"the tables were edited behind writ's back; the ledger is the truth: 'writ server --repair-projections' rewrites them from it")
		}
		return nil
	}
	return c
}

func verifyMark(ok bool) string {
	if ok {
		return "ok  "
	}
	return "FAIL"
}

// onlyWitnessFailures reports whether every failure is of the witness
// check.
func onlyWitnessFailures(r *ledger.Report) bool {
	for _, f := range r.Failures {
		if f.Check != "witness" {
			return false
		}
	}
	return r.Truncated == 0
}

func printVerifyTable(io IO, r *ledger.Report, chk task.LedgerCheck) {
	projDiffs := chk.Projections
	w := io.Stdout
	mark := verifyMark
	has := func(check string) bool {
		for _, f := range r.Failures {
			if f.Check == check {
				return true
			}
		}
		return false
	}
	fmt.Fprintf(w, "ledger %s\n", r.Origin)
	fmt.Fprintf(w, "verifier key %s\n\n", r.VerifierKey)
	fmt.Fprintf(w, "%s tree         recomputed %d events; root %s\n", mark(!has("tree")), r.Size, ledger.RootHex(r.Root))
	fmt.Fprintf(w, "%s sequence     indexes 0..%d without gaps or duplicates\n", mark(!has("sequence")), int64(r.Size)-1)
	fmt.Fprintf(w, "%s events       %d canonical (RFC 8785) envelopes of known types\n", mark(!has("event")), r.Events)
	fmt.Fprintf(w, "%s checkpoints  %d signatures valid; each root matches the recomputed tree at its size, so all are consistent\n", mark(!has("checkpoint") && !has("key")), r.Checkpoints)
	fmt.Fprintf(w, "%s tiles        %d stored tiles equal the recomputed ones\n", mark(!has("tile")), r.Tiles)
	fmt.Fprintf(w, "%s commitments  %d bodies match; %d erased with a recorded erasure\n", mark(!has("commitment")), r.Bodies, r.Erased)
	fmt.Fprintf(w, "%s chains       %d links of %d tasks; each names its task's previous event, none skips one\n", mark(!has("chain")), r.Links, r.Tasks)
	if r.SinceSize > 0 || has("since") {
		fmt.Fprintf(w, "%s since        extends the saved checkpoint of size %d\n", mark(!has("since")), r.SinceSize)
	}
	if chk.SkippedCount == 0 {
		fmt.Fprintf(w, "%s task state   every event follows from the events before it\n", mark(true))
	} else {
		fmt.Fprintf(w, "%s task state   %d event(s) do not follow from the events before them; writ cannot account for them and skips them\n", mark(false), chk.SkippedCount)
	}
	fmt.Fprintf(w, "%s projections  task, approval and credential tables agree with the events\n", mark(len(projDiffs) == 0))
	if r.Uncovered > 0 {
		fmt.Fprintf(w, "note: the last %d event(s) are not yet covered by a checkpoint (the server signs one at its next batch or start)\n", r.Uncovered)
	}
}

// printVerifyProblems lists what printVerifyTable's checks found wrong.
func printVerifyProblems(io IO, r *ledger.Report, chk task.LedgerCheck) {
	projDiffs := chk.Projections
	w := io.Stdout
	if len(r.Failures) > 0 || len(projDiffs) > 0 || chk.SkippedCount > 0 {
		fmt.Fprintln(w, "\nproblems:")
		for _, f := range r.Failures {
			fmt.Fprintf(w, "  %s\n", f)
		}
		for _, k := range chk.Skipped {
			fmt.Fprintf(w, "  task state: %s\n", k)
		}
		if n := chk.SkippedCount - len(chk.Skipped); n > 0 {
			fmt.Fprintf(w, "  task state: … and %d more skipped event(s)\n", n)
		}
		for _, d := range projDiffs {
			fmt.Fprintf(w, "  projections: %s\n", d)
		}
		if r.Truncated > 0 {
			fmt.Fprintf(w, "  … and %d more\n", r.Truncated)
		}
	}
}

func printVerifyJSON(io IO, r *ledger.Report, chk task.LedgerCheck, wj *witnessJSON) {
	projDiffs := chk.Projections
	type failure struct {
		Check  string `json:"check"`
		Index  *int64 `json:"index,omitempty"`
		Detail string `json:"detail"`
	}
	out := struct {
		OK          bool      `json:"ok"`
		Origin      string    `json:"origin"`
		VerifierKey string    `json:"verifier_key"`
		Size        uint64    `json:"size"`
		Root        string    `json:"root"`
		Checkpoints int       `json:"checkpoints"`
		Latest      uint64    `json:"latest_checkpoint_size"`
		Tiles       int       `json:"tiles"`
		Events      int       `json:"events"`
		Bodies      int       `json:"bodies_verified"`
		Erased      int       `json:"bodies_erased"`
		Uncovered   uint64    `json:"uncovered_events"`
		Links       int       `json:"chain_links"`
		Tasks       int       `json:"chain_tasks"`
		SinceSize   uint64    `json:"since_checkpoint_size,omitempty"`
		Failures    []failure `json:"failures"`
		More        int       `json:"more_failures,omitempty"`
		Projections []string  `json:"projection_mismatches"`
		// Unapplied are events the task state cannot apply (skipped).
		Unapplied      []task.Skipped `json:"unapplied_events"`
		UnappliedCount int            `json:"unapplied_count"`
		// Witnesses is the witness check, when witnesses are given.
		Witnesses *witnessJSON `json:"witnesses,omitempty"`
	}{Witnesses: wj, OK: r.OK() && len(projDiffs) == 0 && chk.SkippedCount == 0, Projections: append([]string{}, projDiffs...),
		Unapplied: append([]task.Skipped{}, chk.Skipped...), UnappliedCount: chk.SkippedCount, Origin: r.Origin, VerifierKey: r.VerifierKey, Size: r.Size, Root: ledger.RootHex(r.Root),
		Checkpoints: r.Checkpoints, Latest: r.LatestCheckpoint, Tiles: r.Tiles, Events: r.Events,
		Bodies: r.Bodies, Erased: r.Erased, Uncovered: r.Uncovered, Links: r.Links, Tasks: r.Tasks, SinceSize: r.SinceSize, Failures: []failure{}, More: r.Truncated}
	for _, f := range r.Failures {
		ff := failure{Check: f.Check, Detail: f.Detail}
		if f.Index >= 0 {
			idx := f.Index
			ff.Index = &idx
		}
		out.Failures = append(out.Failures, ff)
	}
	enc := json.NewEncoder(io.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}

func ledgerKeyCommand() *command {
	c := &command{name: "key", args: "[--data-dir DIR]", summary: "print the ledger's note verifier key"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		cf := addConfigFlags(fs)
		_, _, d, err := cf.parseRead(ctx, c, io, args, 0, 0, nil)
		if err != nil {
			return err
		}
		defer d.Close()
		fmt.Fprintln(io.Stdout, d.VerifierKey)
		return nil
	}
	return c
}

func ledgerProofCommand() *command {
	c := &command{name: "proof", args: "<index> [--data-dir DIR] [--out FILE]",
		summary: "write a C2SP tlog-proof of one event against the latest checkpoint"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		cf := addConfigFlags(fs)
		outFile := fs.String("out", "", "write the proof to `file` instead of stdout")
		pos, err := parseArgs(c, fs, args, 1, 1)
		if err != nil {
			return err
		}
		index, err := parseIndex(pos[0])
		if err != nil {
			return err
		}
		_, d, err := cf.openRead(ctx, io)
		if err != nil {
			return err
		}
		defer d.Close()
		cp, err := d.Store.LatestCheckpoint(ctx)
		if err != nil {
			return fmt.Errorf("reading the latest checkpoint: %w", err)
		}
		if index >= cp.Size {
			return withHint(fmt.Errorf("event %d is not covered by the latest checkpoint (size %d)", index, cp.Size),
				"checkpoints follow appends within milliseconds while a server runs; try again, or start the server once to sign one")
		}
		hashes, err := ledger.InclusionProof(ctx, d.Store.ReadTile, index, cp.Size)
		if err != nil {
			return err
		}
		p := ledger.Proof{Index: index, Hashes: hashes, Checkpoint: cp.Note}
		// Check our own output before handing it out.
		leaves, err := d.Store.ReadLeaves(ctx, index, index+1)
		if err != nil || len(leaves) != 1 {
			return fmt.Errorf("reading event %d: %v", index, err)
		}
		v, err := ledger.NewVerifier(d.VerifierKey)
		if err != nil {
			return err
		}
		if _, err := p.Verify(leaves[0], d.Origin, v); err != nil {
			return withHint(fmt.Errorf("the proof does not verify: %w", err), "run 'writ ledger verify'")
		}
		if *outFile != "" {
			return os.WriteFile(*outFile, p.Marshal(), 0o644)
		}
		_, err = io.Stdout.Write(p.Marshal())
		return err
	}
	return c
}

func parseIndex(s string) (uint64, error) {
	var n uint64
	if _, err := fmt.Sscan(s, &n); err != nil || fmt.Sprint(n) != s {
		return 0, &usageError{msg: fmt.Sprintf("%q is not an event index", s), hint: "an index is a whole number, as printed by 'writ ledger append'"}
	}
	return n, nil
}

// checkSince checks the ledger against a checkpoint saved outside writ: it
// must be signed by the log's key and the recomputed tree must extend it. A
// history rewritten along with every checkpoint in the store (which only
// someone holding the signing key could re-sign) is caught this way.
func checkSince(ctx context.Context, d *datadir.Dir, v note.Verifier, path string, rep *ledger.Report) *ledger.Failure {
	b, err := os.ReadFile(path)
	if err != nil {
		return &ledger.Failure{Check: "since", Index: -1, Detail: err.Error()}
	}
	cp, err := ledger.OpenCheckpoint(b, v.Name(), v)
	if err != nil {
		return &ledger.Failure{Check: "since", Index: -1, Detail: fmt.Sprintf("%s: %v", path, err)}
	}
	if err := ledger.CheckConsistency(ctx, d.Store.ReadTile, cp, rep.Size, rep.Root); err != nil {
		return &ledger.Failure{Check: "since", Index: -1, Detail: err.Error()}
	}
	rep.SinceSize = cp.Size
	return nil
}
