package evidence

import (
	"archive/zip"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/witness"
)

// Limits on what Verify reads, so a hostile bundle cannot exhaust memory.
const (
	MaxBundleFiles = 4 << 20
	MaxFileBytes   = 256 << 20
	MaxBundleBytes = 2 << 30
)

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Key is the pinned note verifier key. When set, the bundle's
	// verifier.key must be this key. When empty, the bundle's own key is
	// used and the report says it was not pinned.
	Key string
	// Witnesses, when set, are the witnesses whose cosignatures the
	// bundle's checkpoint must carry, Quorum of them (default all)
	// (cosign.go).
	Witnesses []*witness.Key
	Quorum    int
	// RequireComplete makes every task of the bundle not proven complete
	// to its end (Completeness) a failure: for an auditor who expects the
	// tasks to have ended, a bundle that leaves out their last events.
	RequireComplete bool
}

// Failure is one thing that did not verify.
type Failure struct {
	Check string `json:"check"`
	// Index is the ledger index of the event concerned, if one is.
	Index *uint64 `json:"index,omitempty"`
	// Message says what failed, naming files and events.
	Message string `json:"message"`
}

func (f Failure) String() string { return f.Check + ": " + f.Message }

// Report is the result of Verify.
type Report struct {
	TaskID         string `json:"task_id"`
	Origin         string `json:"origin"`
	CheckpointSize uint64 `json:"checkpoint_size"`
	// Events is the number of events in the bundle; Verified how many of
	// them passed every check that concerns them.
	Events   int  `json:"events"`
	Verified int  `json:"verified"`
	Pinned   bool `json:"key_pinned"`
	// Payloads is the number of disclosed bodies checked; Erased the number
	// of bodies the ledger erased; Policies the number of policy versions.
	Payloads int       `json:"payloads"`
	Erased   int       `json:"erased"`
	Policies int       `json:"policies"`
	Failures []Failure `json:"failures"`
	Warnings []string  `json:"warnings,omitempty"`
	// Cosignatures are the witnesses' cosignatures of the checkpoint that
	// verified, with the quorum required (cosign.go).
	Cosignatures  []CheckedCosignature `json:"cosignatures,omitempty"`
	WitnessQuorum int                  `json:"witness_quorum,omitempty"`
	// Completeness says whether the bundle holds every event of its
	// tasks (complete.go); nil when its events could not be read.
	Completeness *Completeness `json:"completeness,omitempty"`

	timeline api.Trace
}

// Timeline returns the bundle's events as a trace, each marked verified
// when it passed every check that concerns it, for reading a bundle
// offline. It is empty when the bundle's events could not be read.
func (r *Report) Timeline() api.Trace { return r.timeline }

// OK reports whether everything verified.
func (r *Report) OK() bool { return len(r.Failures) == 0 && r.Verified == r.Events }

// VerifyFile verifies the bundle at path; see Verify.
func VerifyFile(p string, opts VerifyOptions) (*Report, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return Verify(f, fi.Size(), opts)
}

// Verify checks an evidence bundle using nothing but its contents (and
// opts.Key): the manifest's hashes, the checkpoint's signature, every
// event's inclusion proof, every disclosed payload against its commitment
// and every missing one against a recorded erasure, the policy sources
// against their versions, that the events form a coherent chain (each
// action under a live credential of an active task, approvals before
// activation…), and that the derived files match the events. Every
// failure is reported; the error is for a bundle that cannot be read at
// all (not a zip, too large).
func Verify(r io.ReaderAt, size int64, opts VerifyOptions) (*Report, error) {
	files, err := readZip(r, size)
	if err != nil {
		return nil, err
	}
	v := &verifier{files: files, rep: &Report{Failures: []Failure{}}, bad: map[uint64]bool{}}
	v.run(opts)
	return v.rep, nil
}

type verifier struct {
	files   map[string][]byte
	rep     *Report
	m       Manifest
	bad     map[uint64]bool // events that failed a check
	allBad  bool            // a failure that no event can be trusted past
	events  []disclosed
	origin  string
	nv      note.Verifier
	cpNote  []byte
	cp      ledger.Checkpoint
	cpSize  uint64
	haveCP  bool
	present map[uint64]int // event index → position in events
}

func (v *verifier) fail(check string, format string, a ...any) {
	v.rep.Failures = append(v.rep.Failures, Failure{Check: check, Message: fmt.Sprintf(format, a...)})
}

// failAll records a failure that no event can be trusted past.
func (v *verifier) failAll(check string, format string, a ...any) {
	v.fail(check, format, a...)
	v.allBad = true
}

// required returns the bundle's file at p, or records that the bundle
// lacks it as a failure no event can be trusted past.
func (v *verifier) required(check, p string) ([]byte, bool) {
	b, ok := v.files[p]
	if !ok {
		v.failAll(check, "the bundle has no %s", p)
	}
	return b, ok
}

func (v *verifier) failEvent(check string, index uint64, format string, a ...any) {
	i := index
	v.rep.Failures = append(v.rep.Failures, Failure{Check: check, Index: &i, Message: fmt.Sprintf(format, a...)})
	v.bad[index] = true
}

// readZip reads every file of the bundle into memory, within the limits,
// after checking that its local entries and central directory describe
// the same files (readZipEntries).
func readZip(r io.ReaderAt, size int64) (map[string][]byte, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("not an evidence bundle (zip): %w", err)
	}
	if len(zr.File) > MaxBundleFiles {
		return nil, fmt.Errorf("bundle holds %d files; the limit is %d", len(zr.File), MaxBundleFiles)
	}
	seen := make(map[string]bool, len(zr.File))
	var total uint64
	contents, err := readZipEntries(r, size, zr, func(name string, usize uint64) error {
		if seen[name] {
			return fmt.Errorf("bundle holds %s twice", name)
		}
		seen[name] = true
		if usize > MaxFileBytes {
			return fmt.Errorf("%s is larger than %d bytes", name, MaxFileBytes)
		}
		if total += usize; total > MaxBundleBytes {
			return fmt.Errorf("bundle is larger than %d bytes uncompressed", int64(MaxBundleBytes))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("not a well-formed evidence bundle: %w", err)
	}
	files := make(map[string][]byte, len(zr.File))
	for i, f := range zr.File {
		if !strings.HasSuffix(f.Name, "/") {
			files[f.Name] = contents[i]
		}
	}
	return files, nil
}

func (v *verifier) run(opts VerifyOptions) {
	if !v.manifest() {
		return
	}
	v.key(opts)
	v.checkpoint()
	v.cosignatures(opts)
	v.readEvents()
	v.proofs()
	v.payloads()
	v.policies()
	v.membership()
	v.chain()
	v.derived()
	v.completeness(opts.RequireComplete)
	v.rep.Events = len(v.events)
	tl := api.Trace{TaskID: v.m.TaskID, Tasks: v.m.Tasks, CheckpointSize: v.cpSize, Checkpoint: string(v.cpNote),
		Events: make([]api.TraceEvent, 0, len(v.events))}
	for _, e := range v.events {
		ok := !v.allBad && !v.bad[e.Index]
		if ok {
			v.rep.Verified++
		}
		tl.Events = append(tl.Events, api.TraceEvent{Index: e.Index, Event: json.RawMessage(e.Leaf), Verified: ok})
	}
	v.rep.timeline = tl
}

// manifest parses manifest.json and checks every file's hash, and that the
// bundle holds no file the manifest does not list.
func (v *verifier) manifest() bool {
	mb, ok := v.required("manifest", ManifestPath)
	if !ok {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(mb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v.m); err != nil {
		v.failAll("manifest", "%s is not a valid manifest: %v", ManifestPath, err)
		return false
	}
	if v.m.Format != Format {
		v.failAll("manifest", "format %q, want %q", v.m.Format, Format)
		return false
	}
	v.rep.TaskID, v.rep.Origin = v.m.TaskID, v.m.Origin
	if _, err := controlsOf(v.m.ControlsVersion); err != nil {
		v.failAll("manifest", "%s names controls_version %d, which this writ does not know; verify it with the writ that wrote it, or a later one", ManifestPath, v.m.ControlsVersion)
		return false
	}
	listed := map[string]bool{}
	for _, f := range v.m.Files {
		if listed[f.Path] {
			v.fail("manifest", "%s is listed twice", f.Path)
			continue
		}
		listed[f.Path] = true
		b, ok := v.files[f.Path]
		if !ok {
			v.fail("manifest", "%s is listed but not in the bundle", f.Path)
			continue
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(b)) != f.Size {
			v.fail("manifest", "%s: SHA-256 does not match the manifest", f.Path)
		}
	}
	var extra []string
	for p := range v.files {
		if !cleanPath(p) {
			v.fail("manifest", "%q is not a plain relative path", p)
		}
		if p != ManifestPath && !listed[p] {
			extra = append(extra, p)
		}
	}
	sort.Strings(extra)
	for _, p := range extra {
		v.fail("manifest", "%s is in the bundle but not listed in the manifest", p)
	}
	if len(v.m.Tasks) == 0 || v.m.Tasks[0] != v.m.TaskID {
		v.fail("manifest", "tasks must start with the exported task %s", v.m.TaskID)
	}
	return true
}

// key reads verifier.key and checks it against the pinned key.
func (v *verifier) key(opts VerifyOptions) {
	kb, ok := v.files[KeyPath]
	if !ok {
		v.fail("key", "the bundle has no %s", KeyPath)
	}
	bundleKey := strings.TrimSpace(string(kb))
	use := bundleKey
	if opts.Key != "" {
		v.rep.Pinned = true
		use = strings.TrimSpace(opts.Key)
		if ok && bundleKey != use {
			v.fail("key", "%s is not the pinned verifier key: the bundle was signed by another key", KeyPath)
		}
	} else {
		v.rep.Warnings = append(v.rep.Warnings, "the verifier key was taken from the bundle itself; pin the ledger's key with --key to rule out a bundle re-signed with another key")
	}
	nv, err := ledger.NewVerifier(use)
	if err != nil {
		v.failAll("key", "%v", err)
		return
	}
	v.nv, v.origin = nv, nv.Name()
	if v.m.Origin != v.origin {
		v.fail("key", "the manifest names log %q but the verifier key is for %q", v.m.Origin, v.origin)
	}
}

// checkpoint checks the checkpoint's signature.
func (v *verifier) checkpoint() {
	cb, ok := v.required("checkpoint", CheckpointPath)
	if !ok {
		return
	}
	if v.nv == nil {
		v.allBad = true
		return
	}
	cp, err := ledger.OpenCheckpoint(cb, v.origin, v.nv)
	if err != nil {
		v.failAll("checkpoint", "the signature does not verify with the verifier key: %v", err)
		return
	}
	v.cpNote, v.cp, v.cpSize, v.haveCP = cb, cp, cp.Size, true
	v.rep.CheckpointSize = cp.Size
	if v.m.CheckpointSize != cp.Size {
		v.fail("manifest", "checkpoint_size is %d but the checkpoint's size is %d", v.m.CheckpointSize, cp.Size)
	}
}

// readEvents parses events.jsonl: canonical leaves, in ledger order.
func (v *verifier) readEvents() {
	eb, ok := v.required("events", EventsPath)
	if !ok {
		return
	}
	v.present = map[uint64]int{}
	sc := bufio.NewScanner(bytes.NewReader(eb))
	sc.Buffer(make([]byte, 0, 64<<10), 4*ledger.MaxLeafBytes)
	line := 0
	var last uint64
	for sc.Scan() {
		line++
		var el EventLine
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&el); err != nil || len(el.Event) == 0 {
			v.failAll("events", "%s line %d is not {\"index\", \"event\"}", EventsPath, line)
			continue
		}
		ent, err := ledger.ParseLeaf(el.Index, []byte(el.Event))
		if err != nil {
			v.failEvent("events", el.Index, "%s line %d: %v", EventsPath, line, err)
			ent = ledger.Entry{Index: el.Index, Leaf: el.Event}
		}
		if _, dup := v.present[el.Index]; dup {
			v.failEvent("events", el.Index, "%s line %d: event %d appears twice", EventsPath, line, el.Index)
			continue
		}
		if line > 1 && el.Index <= last {
			v.failEvent("events", el.Index, "%s line %d: event %d comes after event %d; events must be in ledger order", EventsPath, line, el.Index, last)
		}
		last = max(last, el.Index)
		if v.haveCP && el.Index >= v.cpSize {
			v.failEvent("events", el.Index, "event %d is beyond the checkpoint (size %d)", el.Index, v.cpSize)
		}
		v.present[el.Index] = len(v.events)
		v.events = append(v.events, disclosed{Entry: ent})
	}
	if err := sc.Err(); err != nil {
		v.failAll("events", "%s: %v", EventsPath, err)
	}
	if v.m.Events != len(v.events) {
		v.fail("manifest", "the manifest says %d events but %s holds %d (an event was added or dropped)", v.m.Events, EventsPath, len(v.events))
	}
}

// proofs checks every event's tlog-proof against the bundle's checkpoint.
func (v *verifier) proofs() {
	for _, e := range v.events {
		p := proofPath(e.Index)
		b, ok := v.files[p]
		if !ok {
			v.failEvent("proof", e.Index, "event %d has no %s", e.Index, p)
			continue
		}
		pr, err := ledger.ParseProof(b)
		if err != nil {
			v.failEvent("proof", e.Index, "%s: %v", p, err)
			continue
		}
		if pr.Index != e.Index {
			v.failEvent("proof", e.Index, "%s proves index %d, not %d", p, pr.Index, e.Index)
			continue
		}
		if !v.haveCP {
			continue
		}
		if !bytes.Equal(pr.Checkpoint, v.cpNote) {
			v.failEvent("proof", e.Index, "%s is against another checkpoint than %s", p, CheckpointPath)
			continue
		}
		// The checkpoint is the bundle's, whose signature is checked once.
		if err := verifyInclusion(v.cp, e.Index, e.Leaf, pr.Hashes); err != nil {
			v.failEvent("proof", e.Index, "event %d: inclusion proof does not verify against the checkpoint (the event or its proof was altered)", e.Index)
		}
	}
	for p := range v.files {
		rest, ok := strings.CutPrefix(p, proofsDir)
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(rest, proofSuffix), 10, 64)
		if _, has := v.present[n]; err != nil || !strings.HasSuffix(rest, proofSuffix) || !has {
			v.fail("proof", "%s has no event in %s (an event was dropped?)", p, EventsPath)
		}
	}
}
