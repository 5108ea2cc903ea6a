package evidence

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/query"
	"github.com/writhq/writ/internal/task"
)

// Chainer finds a task's chain of events; *task.Service is one.
type Chainer interface {
	Chain(taskID string) (task.Chain, error)
}

// Source is where Export reads from: the ledger store, its verifier key,
// the kept policy sources and the task state.
type Source struct {
	Store ledger.Store
	// VerifierKey is the ledger's note verifier key (name+hash+base64); its
	// name is the log's origin.
	VerifierKey string
	Policies    policy.SourceStore
	Tasks       Chainer
	// Index, when set, adds the chain's events the task state does not
	// keep, such as events imported from other systems that name the task.
	Index *query.Index
	// CheckpointWait is how long Export waits for a checkpoint to cover the
	// task's newest event (the ledger signs one within its checkpoint
	// interval). Default 2s.
	CheckpointWait time.Duration
	// Witnessed, when set (witnesses are configured), returns the newest
	// checkpoint the witness quorum cosigned, its note with the
	// cosignature lines, or ledger.ErrNotFound (witnessed.go).
	Witnessed func(ctx context.Context) (ledger.StoredCheckpoint, error)
	// WitnessWait is how long Export waits for a witnessed checkpoint to
	// cover the task's newest event. Default 5s.
	WitnessWait time.Duration
	// Now is the clock for the manifest's created_at; default time.Now.
	Now func() time.Time
}

// Options narrow an export.
type Options struct {
	// From and To, when not zero, keep only the actions (decisions, calls,
	// results, refusals) in [From, To]; the lifecycle of the task —
	// request, approvals, activation, credentials, end — is always kept.
	From, To time.Time
}

// Errors returned by Export.
var (
	// ErrNotCovered: no signed checkpoint covers the task's newest event yet.
	ErrNotCovered = errors.New("the task's newest events are not yet covered by a signed checkpoint; try again in a moment")
	// ErrPolicyMissing: an event's policy version has no kept sources.
	ErrPolicyMissing = errors.New("policy sources not kept")
)

// Export writes the evidence bundle of taskID (with its child tasks) to w
// as a zip. It fails, writing nothing useful, when the ledger does not
// verify, a policy version's sources are missing, or no checkpoint covers
// the events yet (ErrNotCovered). Errors from Tasks (such as task's
// ErrNotFound) are returned as they are.
func Export(ctx context.Context, src Source, taskID string, opts Options, w io.Writer) error {
	if src.Now == nil {
		src.Now = time.Now
	}
	if src.CheckpointWait == 0 {
		src.CheckpointWait = 2 * time.Second
	}
	v, err := ledger.NewVerifier(src.VerifierKey)
	if err != nil {
		return err
	}
	origin := v.Name()
	chain, err := src.Tasks.Chain(taskID)
	if err != nil {
		return err
	}
	if src.Index != nil {
		if _, err := src.Index.CatchUp(ctx); err != nil {
			return err
		}
		more, err := src.Index.TaskEvents(ctx, chain.Tasks)
		if err != nil {
			return err
		}
		chain.Events = slices.Compact(slices.Sorted(slices.Values(slices.Concat(chain.Events, more))))
	}
	entries, err := selectEvents(ctx, src.Store, chain, opts)
	if err != nil {
		return err
	}
	b := &builder{files: map[string][]byte{}}
	m := &Manifest{
		Format: Format, TaskID: taskID, Tasks: chain.Tasks, Ancestors: chain.Ancestors,
		CreatedAt: src.Now().UTC().Truncate(time.Second), Origin: origin,
		Policies: map[string]string{}, OCSFVersion: OCSFVersion, ControlsVersion: ControlsVersion,
	}
	if !opts.From.IsZero() || !opts.To.IsZero() {
		m.Window = &Window{}
		if !opts.From.IsZero() {
			f := opts.From.UTC()
			m.Window.From = &f
		}
		if !opts.To.IsZero() {
			t := opts.To.UTC()
			m.Window.To = &t
		}
	}
	windowed := m.Window != nil
	if !windowed {
		if _, err := completeChains(ctx, src.Store, &entries, chain.Tasks); err != nil {
			return err
		}
	}
	if src.Index != nil {
		if entries, err = withPolicyLoads(ctx, src.Store, src.Index, entries); err != nil {
			return err
		}
	}
	// Erasures join the bundle with the bodies they erase; their chains
	// may name events not yet in it, whose bodies are disclosed in turn.
	for {
		n := len(entries)
		if err := disclose(ctx, src.Store, &entries, m); err != nil {
			return err
		}
		if windowed || len(entries) == n {
			break
		}
		added, err := completeChains(ctx, src.Store, &entries, chain.Tasks)
		if err != nil {
			return err
		}
		if !added {
			break
		}
	}
	cp, err := src.bundleCheckpoint(ctx, origin, v, entries)
	if err != nil {
		return err
	}
	m.CheckpointSize, m.Events = cp.Size, len(entries)
	if err := b.proofs(ctx, src.Store, cp, entries); err != nil {
		return err
	}
	if err := b.policies(ctx, src.Policies, entries, m); err != nil {
		return err
	}
	var ev bytes.Buffer
	for _, e := range entries {
		line, _ := json.Marshal(EventLine{Index: e.Index, Event: rawJSON(e.Leaf)})
		ev.Write(line)
		ev.WriteByte('\n')
		for name, body := range e.bodies {
			b.files[payloadPath(e.Index, name)] = body.data
			b.files[payloadPath(e.Index, name)+saltSuffix] = []byte(hex.EncodeToString(body.salt) + "\n")
		}
	}
	b.files[EventsPath] = ev.Bytes()
	b.files[CheckpointPath] = cp.Note
	b.files[KeyPath] = []byte(src.VerifierKey + "\n")
	vw := &view{m: m, events: entries}
	b.files[ControlsPath] = controlsCSV(vw)
	b.files[OCSFPath] = ocsfJSONL(vw)
	b.files[ReportPath] = reportHTML(vw)
	return b.write(w, m)
}

// disclosed is an event with its disclosed bodies.
type disclosed struct {
	ledger.Entry
	bodies map[string]body
	// read is set once disclose has read the event's bodies.
	read bool
}

type body struct {
	salt, data []byte
}

// disclose reads every committed body of the entries it has not read yet.
// A body that is gone must have a recorded erasure; the erasure events join
// the bundle.
func disclose(ctx context.Context, st ledger.Store, entries *[]disclosed, m *Manifest) error {
	missing := map[ledger.BodyRef]string{}
	var first uint64
	present := make(map[uint64]bool, len(*entries))
	for k := range *entries {
		e := &(*entries)[k]
		present[e.Index] = true
		if e.read {
			continue
		}
		e.read = true
		for name, c := range e.Commitments {
			b, err := st.ReadBody(ctx, ledger.BodyRef{Index: e.Index, Name: name})
			switch {
			case errors.Is(err, ledger.ErrNotFound):
				if len(missing) == 0 || e.Index < first {
					first = e.Index
				}
				missing[ledger.BodyRef{Index: e.Index, Name: name}] = c
				continue
			case err != nil:
				return err
			}
			if ledger.Commit(b.Salt, b.Data) != c {
				return fmt.Errorf("%w: body %q of event %d does not match its commitment", ledger.ErrTampered, name, e.Index)
			}
			if e.bodies == nil {
				e.bodies = map[string]body{}
			}
			e.bodies[name] = body{salt: b.Salt, data: b.Data}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	marker := []byte(`"type":"` + ledger.TypeBodyErased + `"`)
	var erasures []disclosed
	err := st.ScanLeaves(ctx, first+1, func(i uint64, leaf []byte) error {
		if !bytes.Contains(leaf, marker) {
			return nil
		}
		ent, err := ledger.ParseLeaf(i, slices.Clone(leaf))
		if err != nil {
			return fmt.Errorf("%w: %v", ledger.ErrTampered, err)
		}
		var eb ledger.ErasedBody
		if json.Unmarshal(ent.Event.Data, &eb) != nil {
			return nil
		}
		ref := ledger.BodyRef{Index: eb.Index, Name: eb.Name}
		if c, ok := missing[ref]; ok && c == eb.Commitment && i > eb.Index {
			delete(missing, ref)
			m.Erased = append(m.Erased, Erased{Index: eb.Index, Name: eb.Name, ErasureIndex: i})
			if !present[i] {
				present[i] = true
				erasures = append(erasures, disclosed{Entry: ent, read: true})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for ref := range missing {
		return fmt.Errorf("%w: body %q of event %d is missing and no erasure of it is recorded", ledger.ErrTampered, ref.Name, ref.Index)
	}
	*entries = append(*entries, erasures...)
	sort.Slice(*entries, func(a, b int) bool { return (*entries)[a].Index < (*entries)[b].Index })
	sort.Slice(m.Erased, func(a, b int) bool {
		x, y := m.Erased[a], m.Erased[b]
		return x.Index < y.Index || x.Index == y.Index && x.Name < y.Name
	})
	return nil
}

// coveringCheckpoint returns the latest checkpoint once it covers need
// entries, waiting up to wait for the ledger to sign one.
func coveringCheckpoint(ctx context.Context, st ledger.Store, origin string, v note.Verifier, need uint64, wait time.Duration) (ledger.Checkpoint, error) {
	cp, ok, err := awaitCheckpoint(ctx, st.LatestCheckpoint, "latest", origin, v, need, wait, 10*time.Millisecond)
	if err == nil && !ok {
		return ledger.Checkpoint{}, ErrNotCovered
	}
	return cp, err
}

// awaitCheckpoint reads a checkpoint every poll until one opens with v and
// covers need entries (ok), or wait runs out (not ok). A read that finds
// none (ledger.ErrNotFound) is tried again; one whose note does not open
// is ledger.ErrTampered, naming the checkpoint as what.
func awaitCheckpoint(ctx context.Context, read func(context.Context) (ledger.StoredCheckpoint, error), what, origin string, v note.Verifier, need uint64, wait, poll time.Duration) (cp ledger.Checkpoint, ok bool, err error) {
	deadline := time.Now().Add(wait)
	for {
		stored, err := read(ctx)
		switch {
		case errors.Is(err, ledger.ErrNotFound):
		case err != nil:
			return ledger.Checkpoint{}, false, err
		default:
			cp, err := ledger.OpenCheckpoint(stored.Note, origin, v)
			if err != nil {
				return cp, false, fmt.Errorf("%w: %s checkpoint: %v", ledger.ErrTampered, what, err)
			}
			if cp.Size >= need {
				return cp, true, nil
			}
		}
		if time.Now().After(deadline) {
			return ledger.Checkpoint{}, false, nil
		}
		select {
		case <-ctx.Done():
			return ledger.Checkpoint{}, false, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// builder collects the bundle's files.
type builder struct {
	files map[string][]byte
}

// proofs writes a tlog-proof per entry, each checked against the signed
// root before it is written.
func (b *builder) proofs(ctx context.Context, st ledger.Store, cp ledger.Checkpoint, entries []disclosed) error {
	pr := newProver(st, cp.Size)
	for _, e := range entries {
		hashes, err := pr.inclusion(ctx, e.Index)
		if err != nil {
			return err
		}
		if err := verifyInclusion(cp, e.Index, e.Leaf, hashes); err != nil {
			return fmt.Errorf("%w: event %d: %v", ledger.ErrTampered, e.Index, err)
		}
		b.files[proofPath(e.Index)] = ledger.Proof{Index: e.Index, Hashes: hashes, Checkpoint: cp.Note}.Marshal()
	}
	return nil
}

// policies adds the sources of every policy version the entries name.
func (b *builder) policies(ctx context.Context, ps policy.SourceStore, entries []disclosed, m *Manifest) error {
	for _, e := range entries {
		pv := e.Event.PolicyVersion
		if pv == "" || m.Policies[pv] != "" {
			continue
		}
		dir, err := policyDir(pv)
		if err != nil {
			return fmt.Errorf("event %d: %w", e.Index, err)
		}
		if ps == nil {
			return fmt.Errorf("%w: no policy source store to read %s from", ErrPolicyMissing, pv)
		}
		src, err := ps.Get(ctx, pv)
		if err != nil {
			return fmt.Errorf("%w: version %s (event %d): %v", ErrPolicyMissing, pv, e.Index, err)
		}
		m.Policies[pv] = dir
		b.files[dir+policyEngineRel] = []byte(src.Engine)
		for _, f := range src.Files {
			b.files[dir+policyFilesRel+f.Path] = f.Data
		}
	}
	return nil
}

// write writes the files in path order and the manifest last.
func (b *builder) write(w io.Writer, m *Manifest) error {
	paths := make([]string, 0, len(b.files))
	for p := range b.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	zw := zip.NewWriter(w)
	// Most files are small; the fastest level compresses them nearly as
	// well as the default at a fraction of the time.
	zw.RegisterCompressor(zip.Deflate, fastDeflate)
	put := func(p string, data []byte) error {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: p, Method: zip.Deflate, Modified: m.CreatedAt})
		if err != nil {
			return err
		}
		_, err = fw.Write(data)
		return err
	}
	m.Files = make([]File, 0, len(paths))
	for _, p := range paths {
		data := b.files[p]
		sum := sha256.Sum256(data)
		m.Files = append(m.Files, File{Path: p, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))})
		if err := put(p, data); err != nil {
			return err
		}
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := put(ManifestPath, append(mb, '\n')); err != nil {
		return err
	}
	return zw.Close()
}

// flateWriters keeps flate writers between files: one costs about a
// megabyte to make, and a bundle holds thousands of small files.
var flateWriters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(io.Discard, flate.BestSpeed)
	return w
}}

type pooledFlate struct{ *flate.Writer }

func (p pooledFlate) Close() error {
	err := p.Writer.Close()
	flateWriters.Put(p.Writer)
	return err
}

func fastDeflate(w io.Writer) (io.WriteCloser, error) {
	fw := flateWriters.Get().(*flate.Writer)
	fw.Reset(w)
	return pooledFlate{fw}, nil
}
