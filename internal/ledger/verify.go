package ledger

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"sort"
	"sync"

	"golang.org/x/mod/sumdb/note"
)

// Failure is one thing verification found wrong.
type Failure struct {
	Check string // tree, checkpoint, sequence, event, tile, commitment, key
	// Index is the event index concerned, or -1 when none applies.
	Index  int64
	Detail string
}

func (f Failure) String() string {
	if f.Index >= 0 {
		return fmt.Sprintf("%s: event %d: %s", f.Check, f.Index, f.Detail)
	}
	return fmt.Sprintf("%s: %s", f.Check, f.Detail)
}

// Report is what a full verification checked and found.
type Report struct {
	Origin      string
	VerifierKey string
	Size        uint64
	Root        []byte
	// Checkpoints is the number of checkpoint signatures checked.
	Checkpoints      int
	LatestCheckpoint uint64
	Tiles            int
	Events           int
	Bodies           int // bodies recomputed against their commitments
	Erased           int // commitments whose body was erased with a recorded erasure
	// Uncovered is the number of events after the latest checkpoint.
	Uncovered uint64
	// SinceSize is the size of an externally saved checkpoint the ledger was
	// shown to extend (writ ledger verify --since), or 0.
	SinceSize uint64
	// Links is the number of task chain links checked (prev and
	// delegation), Tasks the number of tasks whose events were seen.
	Links    int
	Tasks    int
	Failures []Failure
	// Truncated is set when more failures were found than are listed.
	Truncated int
}

// OK reports whether verification found nothing wrong.
func (r *Report) OK() bool { return len(r.Failures) == 0 && r.Truncated == 0 }

const maxFailures = 100

func (r *Report) fail(check string, index int64, format string, a ...any) {
	if len(r.Failures) >= maxFailures {
		r.Truncated++
		return
	}
	r.Failures = append(r.Failures, Failure{Check: check, Index: index, Detail: fmt.Sprintf(format, a...)})
}

// Verify recomputes the whole tree from the store and checks it: every
// checkpoint's signature (against v, whose name is the origin) and root, that
// indexes run from 0 without gaps, that every leaf is a canonical event, that
// the stored tiles are the recomputed ones, and that every stored body matches
// its commitment while every missing one has a recorded erasure. It returns
// an error only when it could not read the store; what it finds wrong is in
// the report.
func Verify(ctx context.Context, s Store, v note.Verifier, vkey string) (*Report, error) {
	r := &Report{Origin: v.Name(), VerifierKey: vkey}
	roots, err := verifyCheckpoints(ctx, s, v, r)
	if err != nil {
		return r, err
	}
	sizes := make([]uint64, 0, len(roots))
	for n := range roots {
		sizes = append(sizes, n)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })

	t := newTree()
	t.untracked = true
	var commits []commitRef
	// erased maps each body an erasure names to the commitment it names.
	erased := map[BodyRef]string{}
	next := 0 // next checkpoint size to compare
	checkRoots := func() {
		for next < len(sizes) && sizes[next] <= t.size() {
			if sizes[next] == t.size() {
				root, _ := t.root()
				if !bytes.Equal(root, roots[sizes[next]]) {
					r.fail("checkpoint", -1, "checkpoint of size %d has root %x, but the stored events give %x", sizes[next], roots[sizes[next]], root)
				}
			}
			next++
		}
	}
	checkRoots()
	tileErr := error(nil)
	compareTile := func(id TileID, want []byte) {
		got, err := s.ReadTile(ctx, id)
		r.Tiles++
		switch {
		case err == ErrNotFound:
			r.fail("tile", -1, "tile %d/%d is missing", id.Level, id.Index)
		case err != nil:
			tileErr = err
		case !bytes.Equal(got, want):
			r.fail("tile", -1, "stored tile %d/%d (%d hashes) differs from the recomputed one (%d hashes)", id.Level, id.Index, len(got)/HashSize, len(want)/HashSize)
			if id.Level == 0 {
				// Name the leaves whose stored hash differs: an edited event
				// or an edited tile. Many differing hashes mean a shift
				// (a gap), reported once by the sequence check.
				var diff []int
				for i := 0; i < min(len(got), len(want))/HashSize; i++ {
					if !bytes.Equal(got[i*HashSize:(i+1)*HashSize], want[i*HashSize:(i+1)*HashSize]) {
						diff = append(diff, i)
					}
				}
				if len(diff) <= 4 {
					for _, i := range diff {
						r.fail("tile", int64(id.Index*TileWidth)+int64(i), "the event's hash differs from the one in stored tile 0/%d: the event or the tile was changed", id.Index)
					}
				}
			}
		}
	}
	var expect uint64 // the index the next leaf should have
	chains := newChainCheck(r)
	err = scanParsed(ctx, s, func(p parsed) error {
		if p.index != expect {
			if p.index > expect {
				r.fail("sequence", int64(expect), "events %d to %d are missing", expect, p.index-1)
			} else {
				r.fail("sequence", int64(p.index), "index out of order or duplicated")
			}
		}
		expect = p.index + 1
		if p.err != nil {
			r.fail("event", int64(p.index), "%v", p.err)
		}
		r.Events++
		for name, c := range p.commitments {
			commits = append(commits, commitRef{BodyRef{p.index, name}, c})
		}
		if p.erased != nil {
			erased[*p.erased] = p.erasedCommitment
		}
		chains.add(p)
		before := t.size()
		if err := t.appendLeafHash(p.hash); err != nil {
			return err
		}
		// A tile is complete when a node lands in its last slot.
		for l := uint64(0); ; l++ {
			w := levelWidth(before+1, l)
			if w == 0 || w == levelWidth(before, l) {
				break
			}
			if w%TileWidth == 0 {
				id := TileID{Level: l, Index: w/TileWidth - 1}
				compareTile(id, t.edge[l])
			}
		}
		checkRoots()
		return tileErr
	})
	if err != nil {
		return r, err
	}
	chains.finish()
	r.Size = t.size()
	r.Root, _ = t.root()
	// The partial tiles at the right edge.
	for l, hashes := range t.edge {
		if w := levelWidth(t.size(), l) % TileWidth; w > 0 {
			compareTile(TileID{Level: l, Index: levelWidth(t.size(), l) / TileWidth}, hashes[:w*HashSize])
		}
	}
	if tileErr != nil {
		return r, tileErr
	}
	for ; next < len(sizes); next++ {
		r.fail("checkpoint", -1, "checkpoint of size %d, but the store holds only %d events (truncated?)", sizes[next], r.Size)
	}
	switch {
	case len(sizes) == 0:
		r.fail("checkpoint", -1, "no valid checkpoint")
	case sizes[len(sizes)-1] < r.Size:
		r.Uncovered = r.Size - sizes[len(sizes)-1]
	}
	if err := verifyBodies(ctx, s, commits, erased, r); err != nil {
		return r, err
	}
	return r, nil
}

func verifyCheckpoints(ctx context.Context, s Store, v note.Verifier, r *Report) (map[uint64][]byte, error) {
	var stored []StoredCheckpoint
	if err := s.ScanCheckpoints(ctx, func(cp StoredCheckpoint) error {
		stored = append(stored, StoredCheckpoint{Size: cp.Size, Note: bytes.Clone(cp.Note)})
		return nil
	}); err != nil {
		return nil, err
	}
	type res struct {
		cp  Checkpoint
		err error
	}
	out := make([]res, len(stored))
	parallel(len(stored), func(i int) {
		cp, err := OpenCheckpoint(stored[i].Note, v.Name(), v)
		out[i] = res{cp, err}
	})
	roots := make(map[uint64][]byte, len(stored))
	for i, st := range stored {
		r.Checkpoints++
		switch {
		case out[i].err != nil:
			r.fail("checkpoint", -1, "checkpoint stored for size %d: %v", st.Size, out[i].err)
		case out[i].cp.Size != st.Size:
			r.fail("checkpoint", -1, "checkpoint stored for size %d says size %d", st.Size, out[i].cp.Size)
		default:
			roots[st.Size] = out[i].cp.Root
			r.LatestCheckpoint = max(r.LatestCheckpoint, st.Size)
		}
	}
	return roots, nil
}

type commitRef struct {
	ref BodyRef
	c   string
}

func verifyBodies(ctx context.Context, s Store, commits []commitRef, erased map[BodyRef]string, r *Report) error {
	sort.Slice(commits, func(i, j int) bool {
		a, b := commits[i].ref, commits[j].ref
		return a.Index < b.Index || a.Index == b.Index && a.Name < b.Name
	})
	i := 0
	missing := func(c commitRef) {
		switch ec, ok := erased[c.ref]; {
		case ok && ec == c.c:
			r.Erased++
		case ok:
			r.fail("commitment", int64(c.ref.Index), "body %q is missing, and the erasure recorded for it names another commitment", c.ref.Name)
		default:
			r.fail("commitment", int64(c.ref.Index), "body %q is missing and no erasure of it is recorded", c.ref.Name)
		}
	}
	err := s.ScanBodies(ctx, func(b Body) error {
		ref := BodyRef{b.Index, b.Name}
		for i < len(commits) && less(commits[i].ref, ref) {
			missing(commits[i])
			i++
		}
		if i == len(commits) || commits[i].ref != ref {
			r.fail("commitment", int64(b.Index), "body %q is stored but the event commits to no such body", b.Name)
			return nil
		}
		if b.Unreadable != nil {
			r.fail("commitment", int64(b.Index), "body %q cannot be read: %v", b.Name, b.Unreadable)
		} else if got := Commit(b.Salt, b.Data); got != commits[i].c {
			r.fail("commitment", int64(b.Index), "body %q does not match its commitment", b.Name)
		} else {
			r.Bodies++
		}
		if _, ok := erased[ref]; ok {
			r.fail("commitment", int64(b.Index), "body %q is recorded as erased but is still stored", b.Name)
		}
		i++
		return nil
	})
	for ; i < len(commits); i++ {
		missing(commits[i])
	}
	return err
}

func less(a, b BodyRef) bool { return a.Index < b.Index || a.Index == b.Index && a.Name < b.Name }

// parsed is one leaf after the parallel stage of verification.
type parsed struct {
	index       uint64
	hash        []byte
	commitments map[string]string
	erased      *BodyRef
	// erasedCommitment is the commitment the erasure names.
	erasedCommitment string
	err              error
	link             chainLink
}

// scanParsed streams the leaves, parses and hashes them on every core, and
// calls fn for each in index order.
func scanParsed(ctx context.Context, s Store, fn func(parsed) error) error {
	const chunk = 512
	type job struct {
		idx    []uint64
		leaves [][]byte
		out    []parsed
		done   chan struct{}
	}
	jobs := make(chan *job, 16)
	order := make(chan *job, 16)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j.out = make([]parsed, len(j.leaves))
				for k, leaf := range j.leaves {
					j.out[k] = parseForVerify(j.idx[k], leaf)
				}
				close(j.done)
			}
		}()
	}
	consumeErr := make(chan error, 1)
	go func() {
		var err error
		for j := range order {
			<-j.done
			for _, p := range j.out {
				if err == nil {
					err = fn(p)
				}
			}
		}
		consumeErr <- err
	}()
	cur := &job{done: make(chan struct{})}
	flush := func() {
		order <- cur
		jobs <- cur
		cur = &job{done: make(chan struct{})}
	}
	scanErr := s.ScanLeaves(ctx, 0, func(i uint64, leaf []byte) error {
		cur.idx = append(cur.idx, i)
		cur.leaves = append(cur.leaves, bytes.Clone(leaf))
		if len(cur.leaves) == chunk {
			flush()
		}
		return nil
	})
	if len(cur.leaves) > 0 {
		flush()
	}
	close(jobs)
	close(order)
	wg.Wait()
	if err := <-consumeErr; err != nil {
		return err
	}
	return scanErr
}

func parseForVerify(index uint64, leaf []byte) parsed {
	p := parsed{index: index, hash: LeafHash(leaf)}
	e, err := ParseLeaf(index, leaf)
	if err != nil {
		p.err = err
		return p
	}
	p.commitments = e.Commitments
	p.link = linkOf(e)
	if e.Event.Type == TypeBodyErased {
		var eb ErasedBody
		if err := json.Unmarshal(e.Event.Data, &eb); err != nil || eb.Index >= index || !validBodyName(eb.Name) {
			p.err = fmt.Errorf("malformed erasure record")
			return p
		}
		p.erased, p.erasedCommitment = &BodyRef{eb.Index, eb.Name}, eb.Commitment
	}
	return p
}

// parallel runs fn(0..n-1) on every core.
func parallel(n int, fn func(int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// RootHex formats a root for display.
func RootHex(b []byte) string { return hex.EncodeToString(b) }
