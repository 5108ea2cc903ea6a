package cli

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/server"
	"github.com/writhq/writ/internal/witness"
)

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// witnessFlags name the witnesses a verification checks against, in place
// of the configuration's ledger.witnesses.
type witnessFlags struct {
	keys, urls listFlag
	quorum     string
	offline    bool
}

func addWitnessFlags(fs *flag.FlagSet, online bool) *witnessFlags {
	wf := &witnessFlags{}
	fs.Var(&wf.keys, "witness", "a witness's cosignature/v1 verifier `key` (name+hash+base64) to require cosignatures from; repeat for each (default: ledger.witnesses of the configuration)")
	fs.StringVar(&wf.quorum, "quorum", "", "cosignatures `N` required (default: all the witnesses)")
	if online {
		fs.Var(&wf.urls, "witness-url", "the `URL` of the --witness at the same position, to ask what it has cosigned")
		fs.BoolVar(&wf.offline, "offline", false, "do not ask the witnesses; check only the cosignatures in the store")
	}
	return wf
}

// resolve returns the witnesses and quorum to check against: the flags',
// or the configuration's. No witnesses is no check.
func (wf *witnessFlags) resolve(cfg config.LedgerConfig) ([]witness.Witness, int, error) {
	var ws []witness.Witness
	switch {
	case len(wf.keys) > 0:
		if len(wf.urls) > len(wf.keys) {
			return nil, 0, &usageError{msg: fmt.Sprintf("%d --witness-url for %d --witness", len(wf.urls), len(wf.keys)),
				hint: "give each --witness-url right after the --witness it belongs to"}
		}
		for i, s := range wf.keys {
			k, err := witness.ParseKey(s)
			if err != nil {
				return nil, 0, &usageError{msg: fmt.Sprintf("--witness %q: %v", s, err), hint: "a witness key looks like witness.example/w1+1a2b3c4d+BAbC…; the witness prints it"}
			}
			w := witness.Witness{Key: k}
			if i < len(wf.urls) {
				wc := config.WitnessConfig{URL: wf.urls[i]}
				w.URL = wc.SubmissionURL()
			}
			ws = append(ws, w)
		}
	case len(wf.urls) > 0:
		return nil, 0, &usageError{msg: "--witness-url without --witness", hint: "name each witness by its key: --witness KEY --witness-url URL"}
	default:
		var err error
		if ws, err = server.Witnesses(cfg); err != nil {
			return nil, 0, err
		}
	}
	if wf.offline {
		for i := range ws {
			ws[i].URL = ""
		}
	}
	quorum := len(ws)
	switch {
	case wf.quorum != "" && len(ws) == 0:
		return nil, 0, &usageError{msg: "--quorum without witnesses", hint: "name the witnesses with --witness KEY (or ledger.witnesses in --config)"}
	case wf.quorum != "":
		n, err := strconv.Atoi(wf.quorum)
		if err != nil || n < 1 || n > len(ws) {
			return nil, 0, &usageError{msg: fmt.Sprintf("--quorum %q: want 1 to %d, the number of witnesses", wf.quorum, len(ws)), hint: "--quorum counts the witnesses whose cosignatures are required"}
		}
		quorum = n
	case len(wf.keys) == 0 && len(ws) > 0:
		quorum = cfg.Quorum()
	}
	return ws, quorum, nil
}

// checkWitnessing checks the ledger's cosignatures and, online, asks the
// witnesses what they have cosigned, submitting the store's latest
// checkpoint once it is shown to extend the tree just verified. What fails
// is added to rep's failures (check "witness").
func checkWitnessing(ctx context.Context, d *datadir.Dir, v note.Verifier, rep *ledger.Report, ws []witness.Witness, quorum int) (*witness.CheckReport, error) {
	st, ok := d.Store.(witness.Store)
	if !ok {
		return nil, fmt.Errorf("the %s store keeps no cosignatures", d.Backend)
	}
	stored, err := d.Store.LatestCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the latest checkpoint: %w", err)
	}
	fail := func(format string, a ...any) {
		rep.Failures = append(rep.Failures, ledger.Failure{Check: "witness", Index: -1, Detail: fmt.Sprintf(format, a...)})
	}
	latest, err := ledger.OpenCheckpoint(stored.Note, v.Name(), v)
	if err != nil {
		fail("the latest checkpoint does not verify: %v", err)
		return nil, nil
	}
	// A server may have signed checkpoints since the tree was recomputed;
	// the one shown to the witnesses must extend what was verified.
	switch {
	case latest.Size > rep.Size && rep.Size > 0:
		if err := ledger.CheckConsistency(ctx, d.Store.ReadTile, ledger.Checkpoint{Size: rep.Size, Root: rep.Root}, latest.Size, latest.Root); err != nil {
			fail("the latest checkpoint (size %d) does not extend the verified tree of %d: %v", latest.Size, rep.Size, err)
			return nil, nil
		}
	case latest.Size < rep.Size && latest.Size != rep.LatestCheckpoint:
		fail("the latest checkpoint has size %d, but the verified one %d", latest.Size, rep.LatestCheckpoint)
		return nil, nil
	}
	probe := false
	for _, w := range ws {
		probe = probe || w.URL != ""
	}
	wr, err := witness.Check(ctx, st, witness.CheckOptions{Witnesses: ws, Quorum: quorum, Latest: stored, Verifier: v,
		Read: d.Store.ReadTile, Probe: probe, HTTP: &http.Client{Timeout: witness.DefaultTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}})
	if err != nil {
		return nil, fmt.Errorf("reading the cosignatures: %w", err)
	}
	for _, f := range wr.Failures {
		fail("%s", f)
	}
	return wr, nil
}

// printWitnessTable prints the witness lines of `writ ledger verify`.
func printWitnessTable(io IO, wr *witness.CheckReport, ws []witness.Witness, mark func(bool) string) {
	w := io.Stdout
	names := map[string]string{}
	for _, x := range ws {
		names[x.Key.String()] = x.Key.Name()
	}
	var cosigners []string
	for _, k := range wr.LatestCosigners {
		cosigners = append(cosigners, names[k])
	}
	by := "none"
	if len(cosigners) > 0 {
		by = strings.Join(cosigners, ", ")
	}
	quorumOK := len(wr.LatestCosigners) >= wr.Quorum
	fmt.Fprintf(w, "%s witnessed    the latest checkpoint (size %d) is cosigned by %d of %d witnesses (quorum %d): %s\n",
		mark(quorumOK), wr.LatestSize, len(wr.LatestCosigners), len(ws), wr.Quorum, by)
	storedOK := true
	for _, f := range wr.Failures {
		if strings.HasPrefix(f, "the stored cosignature") || strings.HasPrefix(f, "the cosignature by") || strings.HasPrefix(f, "the checkpoint of size") {
			storedOK = false
		}
	}
	others := ""
	if wr.Others > 0 {
		others = fmt.Sprintf("; %d by other witnesses not checked", wr.Others)
	}
	fmt.Fprintf(w, "%s cosignatures %d stored cosignatures verify over their checkpoints%s\n", mark(storedOK), wr.Checked, others)
	for _, p := range wr.Probes {
		switch {
		case p.Refusal != nil:
			fmt.Fprintf(w, "%s witness      %s: %s (it has cosigned %d entries; this ledger's latest checkpoint has %d)\n", mark(false), p.Witness, p.Refusal.Reason, p.WitnessSize, wr.LatestSize)
		case p.OK():
			fmt.Fprintf(w, "%s witness      %s: had cosigned %d entries; cosigned %d now, so this ledger extends everything it saw\n", mark(true), p.Witness, p.WitnessSize, wr.LatestSize)
		default:
			fmt.Fprintf(w, "note: witness %s could not be asked: %s\n", p.Witness, p.Err)
		}
	}
	for _, x := range ws {
		if x.URL == "" {
			fmt.Fprintf(w, "note: witness %s was not asked (no URL, or --offline): a rollback or fork against it is not ruled out\n", x.Key.Name())
		}
	}
}

// witnessJSON is the witness part of `writ ledger verify -o json`.
type witnessJSON struct {
	Quorum          int           `json:"quorum"`
	LatestSize      uint64        `json:"latest_checkpoint_size"`
	LatestCosigners []string      `json:"latest_cosigners"`
	WitnessedSize   *uint64       `json:"witnessed_size,omitempty"`
	Checked         int           `json:"cosignatures_verified"`
	Others          int           `json:"cosignatures_not_checked"`
	Probes          []probeJSON   `json:"probes"`
	Failures        []string      `json:"failures"`
	Witnesses       []witnessItem `json:"witnesses"`
}

type probeJSON struct {
	Witness     string     `json:"witness"`
	Key         string     `json:"key"`
	URL         string     `json:"url"`
	Reached     bool       `json:"reached"`
	Error       string     `json:"error,omitempty"`
	WitnessSize uint64     `json:"witness_size"`
	Cosigned    *time.Time `json:"cosigned,omitempty"`
	Refusal     string     `json:"refusal,omitempty"`
	Detail      string     `json:"detail,omitempty"`
}

type witnessItem struct {
	Name string `json:"name"`
	Key  string `json:"key"`
	URL  string `json:"url,omitempty"`
}

func witnessReportJSON(wr *witness.CheckReport, ws []witness.Witness) *witnessJSON {
	if wr == nil {
		return nil
	}
	out := &witnessJSON{Quorum: wr.Quorum, LatestSize: wr.LatestSize, LatestCosigners: append([]string{}, wr.LatestCosigners...),
		Checked: wr.Checked, Others: wr.Others, Probes: []probeJSON{}, Failures: append([]string{}, wr.Failures...), Witnesses: []witnessItem{}}
	if wr.HaveWitnessed {
		n := wr.Witnessed
		out.WitnessedSize = &n
	}
	for _, p := range wr.Probes {
		pj := probeJSON{Witness: p.Witness, Key: p.Key, URL: p.URL, Reached: p.Reached, Error: p.Err, WitnessSize: p.WitnessSize}
		if p.Cosignature != nil {
			t := p.Cosignature.Time
			pj.Cosigned = &t
		}
		if p.Refusal != nil {
			pj.Refusal, pj.Detail = p.Refusal.Reason, p.Refusal.Detail
		}
		out.Probes = append(out.Probes, pj)
	}
	for _, w := range ws {
		out.Witnesses = append(out.Witnesses, witnessItem{Name: w.Key.Name(), Key: w.Key.String(), URL: w.URL})
	}
	return out
}

// witnessedSource makes a bundle exported from a data directory carry the
// newest checkpoint the configured witnesses' quorum cosigned, when one
// covers the task.
func witnessedSource(cfg config.Config, d *datadir.Dir, src *evidence.Source) error {
	ws, err := server.Witnesses(cfg.Ledger)
	if err != nil || len(ws) == 0 {
		return err
	}
	st, ok := d.Store.(witness.Store)
	if !ok {
		return nil
	}
	var keys []string
	for _, w := range ws {
		keys = append(keys, w.Key.String())
	}
	src.Witnessed, src.WitnessWait = witness.Newest(st, keys, cfg.Ledger.Quorum()), time.Millisecond
	return nil
}
