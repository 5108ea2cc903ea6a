package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/ledger"
)

func verifyCommand() *command {
	c := &command{name: "verify", args: "<bundle.zip> [--key VKEY] [--witness KEY]... [--quorum N] [--complete] [--timeline] [-o table|json]",
		summary: "check an evidence bundle offline: hashes, checkpoint signature, every proof, payload and policy, the chain, and that no event of its tasks is left out"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		key := fs.String("key", "", "pin the ledger's verifier key `VKEY` (name+hash+base64, or @FILE holding it); without it the bundle's own key is used")
		out := fs.String("o", "table", "output `format`: table or json")
		complete := fs.Bool("complete", false, "also fail unless every task of the bundle has ended and is proven complete to its end (for a bundle of tasks you expect to be over)")
		timeline := fs.Bool("timeline", false, "also print the bundle's events as a timeline (as 'writ trace' does), each marked verified or not")
		wf := addWitnessFlags(fs, false)
		pos, err := parseArgs(c, fs, args, 1, 1)
		if err != nil {
			return err
		}
		ws, quorum, err := wf.resolve(config.LedgerConfig{})
		if err != nil {
			return err
		}
		if err := checkOutput(*out); err != nil {
			return err
		}
		vkey := strings.TrimSpace(*key)
		if name, ok := strings.CutPrefix(vkey, "@"); ok {
			b, err := os.ReadFile(name)
			if err != nil {
				return withHint(err, "--key @FILE reads the verifier key from FILE")
			}
			vkey = strings.TrimSpace(string(b))
		}
		if vkey != "" {
			if _, err := ledger.NewVerifier(vkey); err != nil {
				return withHint(err, "a verifier key looks like origin+1a2b3c4d+AbCd…; 'writ ledger key' prints it")
			}
		}
		opts := evidence.VerifyOptions{Key: vkey, Quorum: quorum, RequireComplete: *complete}
		for _, w := range ws {
			opts.Witnesses = append(opts.Witnesses, w.Key)
		}
		rep, err := evidence.VerifyFile(pos[0], opts)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return withHint(err, "name the bundle written by 'writ export'")
			}
			return withHint(fmt.Errorf("%s: %w", pos[0], err), "the file is not a readable evidence bundle")
		}
		if *out == "json" {
			if err := printJSON(io, struct {
				OK bool `json:"ok"`
				*evidence.Report
			}{rep.OK(), rep}); err != nil {
				return err
			}
		} else {
			if *timeline {
				if _, err := printTimeline(io, rep.Timeline()); err != nil {
					fmt.Fprintf(io.Stdout, "timeline: %v\n", err)
				}
				fmt.Fprintln(io.Stdout)
			}
			printBundleReport(io, rep)
		}
		if !rep.OK() {
			return withHint(fmt.Errorf("evidence bundle does not verify: %d failure(s)", len(rep.Failures)),
				"do not rely on this bundle; export it again from the server and compare")
		}
		return nil
	}
	return c
}

func printBundleReport(io IO, r *evidence.Report) {
	w := io.Stdout
	count := map[string]int{}
	for _, f := range r.Failures {
		count[f.Check]++
	}
	mark := func(checks ...string) string {
		for _, c := range checks {
			if count[c] > 0 {
				return "FAIL"
			}
		}
		return "ok  "
	}
	fmt.Fprintf(w, "bundle of task %s from log %s\n", r.TaskID, r.Origin)
	if r.Pinned {
		fmt.Fprintln(w, "verifier key: pinned")
	} else {
		fmt.Fprintln(w, "verifier key: taken from the bundle (not pinned)")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%s manifest     every file's SHA-256 matches; no file unlisted\n", mark("manifest"))
	fmt.Fprintf(w, "%s checkpoint   signed by the verifier key; size %d\n", mark("key", "checkpoint"), r.CheckpointSize)
	fmt.Fprintf(w, "%s events       %d canonical events in ledger order\n", mark("events"), r.Events)
	fmt.Fprintf(w, "%s proofs       every event included in the checkpoint\n", mark("proof"))
	if r.WitnessQuorum > 0 {
		var by []string
		for _, c := range r.Cosignatures {
			by = append(by, c.Witness+" at "+c.Time.UTC().Format(time.RFC3339))
		}
		fmt.Fprintf(w, "%s witnessed    the checkpoint is cosigned by %d witnesses (quorum %d): %s\n", mark("witness"), len(r.Cosignatures), r.WitnessQuorum, strings.Join(by, ", "))
	}
	fmt.Fprintf(w, "%s payloads     %d disclosed bodies match their commitments; %d erased with a recorded erasure\n", mark("payload"), r.Payloads, r.Erased)
	fmt.Fprintf(w, "%s policies     %d policy version(s); sources hash to the version that decided\n", mark("policy"), r.Policies)
	fmt.Fprintf(w, "%s chain        each event follows from those before it\n", mark("chain"))
	fmt.Fprintf(w, "%s derived      controls.csv, ocsf.jsonl and report.html match the events\n", mark("derived"))
	printCompleteness(w, r.Completeness, mark("complete"))
	fmt.Fprintf(w, "\n%d/%d events verified\n", r.Verified, r.Events)
	for _, s := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", s)
	}
	if len(r.Failures) > 0 {
		fmt.Fprintln(w, "\nfailures:")
		for _, f := range r.Failures {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
}

// printCompleteness prints the completeness line and one line per task.
func printCompleteness(w io.Writer, c *evidence.Completeness, mark string) {
	if c == nil {
		return
	}
	what := map[string]string{
		evidence.StatusComplete:         "no event of the bundle's tasks is left out, from each one's first through its end",
		evidence.StatusCompleteToNewest: "no event of the bundle's tasks is left out up to each one's newest here; a task that had not ended may have later events",
		evidence.StatusUnchained:        "not provable: some events were written before writ linked each task's events",
		evidence.StatusIncomplete:       "events of the bundle's tasks are left out",
	}[c.Status]
	if len(c.Missing) > 0 {
		what += fmt.Sprintf(" (missing: %s)", joinIndexes(c.Missing))
	}
	if mark != "FAIL" && c.Status != evidence.StatusComplete && c.Status != evidence.StatusCompleteToNewest {
		mark = "note" // a window leaves events out by design; older events have no links
	}
	fmt.Fprintf(w, "%s complete     %s: %s\n", mark, strings.ReplaceAll(c.Status, "_", " "), what)
	for _, t := range c.Tasks {
		fmt.Fprintf(w, "               %s %s: %s\n", t.TaskID, strings.ReplaceAll(t.Status, "_", " "), t.Message)
	}
}

func joinIndexes(idx []uint64) string {
	s := make([]string, len(idx))
	for i, n := range idx {
		s[i] = strconv.FormatUint(n, 10)
	}
	return strings.Join(s, ", ")
}
