// Package ledger is writ's tamper-evident evidence ledger: an append-only
// RFC 6962 Merkle tree of canonical (RFC 8785) events, with payload
// commitments, group-committed to a Store and checkpointed as C2SP signed
// notes. It serves the log as C2SP tlog-tiles and verifies it end to end.
// Each event of a task names the task's previous event, so that a set of a
// task's events can be checked for gaps (chain.go).
//
// Every event is acknowledged only once the transaction holding it is
// durable; a caller that gets an index back can rely on the event surviving a
// crash. When the store cannot be written, Append fails with ErrUnavailable
// and nothing is acknowledged: callers deny.
package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"
)

// Config configures a Ledger.
type Config struct {
	Store Store
	// Signer signs checkpoints; its name is the log's origin.
	Signer note.Signer
	// Verifier checks the checkpoints found in the store at start. When nil,
	// the Signer must provide one (as a *KeyPair does).
	Verifier note.Verifier
	// MaxBodyBytes limits one payload body. Default 1 MiB.
	MaxBodyBytes int64
	// MaxBatch is the most events committed in one transaction. Default 1024.
	MaxBatch int
	// CheckpointInterval is the least time between checkpoints. Zero signs a
	// checkpoint with every batch. Default 5ms.
	CheckpointInterval time.Duration
	// CommitDelay is the longest the sequencer waits to grow a batch while
	// several callers append at once. Zero commits as soon as anything waits.
	// Default 1ms.
	CommitDelay time.Duration
	Logger      *slog.Logger
	// OnCommit, when set, is called by the sequencer after each commit and
	// before any caller hears of it, once per request in index order, with
	// the index of the request's first event and the events as their
	// leaves record them (Time set, in UTC; Data canonical), with their
	// Bodies, the leaves themselves, byte for byte as stored, and each
	// leaf's RFC 6962 hash as the tree took it (hashes[i] is
	// LeafHash(leaves[i])), so that a consumer sending leaf hashes need not
	// compute them again. It must be quick and must not append.
	OnCommit func(first uint64, events []Event, leaves, hashes [][]byte)
	// Observe, when set, is told of every batch the sequencer commits or
	// fails to commit (observe.go), before OnCommit and before any caller
	// hears of it. It must be quick.
	Observe func(CommitStats)
	// Now is the clock; tests set it.
	Now func() time.Time
}

// DefaultConfig returns a Config with the defaults filled in.
func DefaultConfig() Config {
	return Config{MaxBodyBytes: 1 << 20, MaxBatch: 1024, CheckpointInterval: 5 * time.Millisecond, CommitDelay: time.Millisecond}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("ledger: no store")
	case c.Signer == nil:
		return errors.New("ledger: no checkpoint signer")
	case c.Verifier == nil:
		return errors.New("ledger: no checkpoint verifier")
	case c.Verifier.Name() != c.Signer.Name():
		return errors.New("ledger: signer and verifier name different logs")
	case c.MaxBodyBytes <= 0:
		return errors.New("ledger: MaxBodyBytes must be positive")
	case c.MaxBatch <= 0:
		return errors.New("ledger: MaxBatch must be positive")
	case c.CheckpointInterval < 0:
		return errors.New("ledger: CheckpointInterval must not be negative")
	case c.CommitDelay < 0:
		return errors.New("ledger: CommitDelay must not be negative")
	}
	return nil
}

// Ledger appends events through a single sequencer with group commit.
type Ledger struct {
	cfg    Config
	origin string
	lim    limits
	log    *slog.Logger

	// lastCommit is the outcome of the latest failed commit, nil once
	// one succeeds (ready.go); gone is set once the store reported
	// ErrStoreGone.
	lastCommit atomic.Pointer[commitState]
	gone       atomic.Bool

	mu     sync.RWMutex // guards closed and sends on reqs
	closed bool
	reqs   chan *request
	done   chan struct{}

	// Owned by the sequencer goroutine.
	tree     *tree
	lastCP   time.Time
	lastSize uint64 // size of the latest stored checkpoint
	haveCP   bool   // whether any checkpoint is stored
	heads    *taskHeads
}

// request is one caller's events, committed contiguously and in order.
type request struct {
	events  []Event
	entries []pendingEntry
	erase   []BodyRef
	reply   chan result
	// linked is events with their task links, as stamped, when any has
	// one: what OnCommit hands on, with leaves, the request's leaves as
	// stamped.
	linked []Event
	leaves [][]byte
	// hashes are the leaves' hashes, as stamped, for OnCommit.
	hashes [][]byte
}

// pendingEntry is an event encoded, waiting for the sequencer. The leaf of
// a task's event lacks its links; hash is of the leaf of an event of no
// task.
type pendingEntry struct {
	leaf   []byte
	hash   []byte
	bodies []Body
	task   string
	slots  linkSlots
	// delegation is the position in the request of the parent's
	// task.delegated event a child's task.requested names, or -1.
	delegation int
}

type result struct {
	first uint64 // index of the request's first event
	err   error
}

// New opens the ledger on cfg.Store, rebuilding the tree's right edge from the
// stored tiles, and starts the sequencer. If the latest checkpoint does not
// cover every stored leaf (after a crash), a fresh one is signed first.
func New(ctx context.Context, cfg Config) (*Ledger, error) {
	def := DefaultConfig()
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = def.MaxBodyBytes
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = def.MaxBatch
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Verifier == nil {
		if kp, ok := cfg.Signer.(interface{ Verifier() note.Verifier }); ok {
			cfg.Verifier = kp.Verifier()
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Ledger{
		cfg:    cfg,
		origin: cfg.Signer.Name(),
		lim:    limits{maxBody: cfg.MaxBodyBytes},
		log:    cfg.Logger,
		reqs:   make(chan *request, 4*cfg.MaxBatch),
		done:   make(chan struct{}),
	}
	if err := l.openLoad(ctx); err != nil {
		return nil, err
	}
	if err := l.buildHeads(ctx); err != nil {
		return nil, err
	}
	if !l.haveCP || l.tree.size() > l.lastSize {
		if err := l.commitCheckpoint(ctx); err != nil {
			return nil, fmt.Errorf("signing checkpoint at start: %w", err)
		}
	}
	go l.run()
	return l, nil
}

// ErrTampered reports a store that does not match its own signed
// checkpoints. The ledger refuses to open it: signing on top would lend the
// key's authority to whatever changed.
var ErrTampered = errors.New("ledger store does not match its signed checkpoints")

// openLoad is load at start. On a shared store it reads under the log's
// write lock: other writers appending meanwhile could otherwise show it a
// checkpoint newer than the size it read.
func (l *Ledger) openLoad(ctx context.Context) error {
	ss, ok := l.cfg.Store.(SharedStore)
	if !ok {
		return l.load(ctx)
	}
	var loadErr error
	err := ss.Sequence(ctx, ^uint64(0), func(ctx context.Context, r LockedReader) (*Batch, error) {
		loadErr = l.loadFrom(ctx, r)
		return nil, nil
	})
	if loadErr != nil {
		return loadErr
	}
	return err
}

// load reads the store's size and edge tiles into memory and checks them
// against the latest signed checkpoint: the same root at the same size, or,
// after a crash left events uncovered, a consistency proof from it.
func (l *Ledger) load(ctx context.Context) error {
	return l.loadFrom(ctx, l.cfg.Store)
}

// loadFrom is load reading through r: the store, or a shared store's view
// under its write lock.
func (l *Ledger) loadFrom(ctx context.Context, r LockedReader) error {
	size, err := r.Size(ctx)
	if err != nil {
		return fmt.Errorf("reading ledger size: %w", err)
	}
	t, err := loadTree(ctx, size, r.ReadTile)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrTampered, err)
	}
	stored, err := r.LatestCheckpoint(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
		if size > 0 {
			// A checkpoint of the empty tree is signed before the first
			// append, so events without any checkpoint were put there.
			return fmt.Errorf("%w: the store holds %d events but no checkpoint", ErrTampered, size)
		}
		l.tree, l.lastSize, l.haveCP = t, 0, false
		return nil
	case err != nil:
		return fmt.Errorf("reading latest checkpoint: %w", err)
	}
	cp, err := OpenCheckpoint(stored.Note, l.origin, l.cfg.Verifier)
	if err != nil {
		return fmt.Errorf("%w: latest checkpoint: %v", ErrTampered, err)
	}
	if cp.Size != stored.Size || cp.Size > size {
		return fmt.Errorf("%w: latest checkpoint covers %d events but the store holds %d (truncated?)", ErrTampered, cp.Size, size)
	}
	root, err := t.root()
	if err != nil {
		return err
	}
	if cp.Size == size {
		if !bytes.Equal(root, cp.Root) {
			return fmt.Errorf("%w: the stored tree's root differs from the latest checkpoint's", ErrTampered)
		}
	} else {
		p, err := ConsistencyProof(ctx, r.ReadTile, cp.Size, size)
		if err == nil {
			err = proof.VerifyConsistency(hasher, cp.Size, size, p, cp.Root, root)
		}
		if err != nil {
			return fmt.Errorf("%w: events after the latest checkpoint (size %d) are not consistent with it: %v", ErrTampered, cp.Size, err)
		}
	}
	l.tree, l.lastSize, l.haveCP = t, cp.Size, true
	return nil
}

// Origin returns the log's origin line.
func (l *Ledger) Origin() string { return l.origin }

// Append validates e, commits it durably and returns its index. If e.Time is
// zero it is set to now. Errors: *ValidationError (nothing written),
// ErrClosed, ErrUnavailable, or ctx's error (the event may or may not have
// been committed).
func (l *Ledger) Append(ctx context.Context, e Event) (uint64, error) {
	return l.append(ctx, []Event{e}, nil)
}

// AppendAll commits events durably at consecutive indexes, in order, in one
// transaction, and returns the index of the first. If any event is invalid,
// none is written and the *ValidationError's Item says which.
func (l *Ledger) AppendAll(ctx context.Context, events []Event) (uint64, error) {
	if len(events) == 0 {
		return 0, &ValidationError{Reason: "no events"}
	}
	return l.append(ctx, events, nil)
}

func (l *Ledger) append(ctx context.Context, events []Event, erase []BodyRef) (uint64, error) {
	r := &request{events: events, entries: make([]pendingEntry, len(events)), erase: erase, reply: make(chan result, 1)}
	now := l.cfg.Now()
	for i := range events {
		e := &events[i]
		if e.Time.IsZero() {
			e.Time = now
		}
		leaf, bodies, slots, err := encode(e, l.lim)
		pe := pendingEntry{leaf: leaf, bodies: bodies, task: e.TaskID, slots: slots, delegation: -1}
		if err == nil && e.Parent != "" {
			pe.delegation, err = delegationOf(events, i)
		}
		if err != nil {
			if ve, ok := err.(*ValidationError); ok && len(events) > 1 {
				ve.Item = i
			}
			return 0, err
		}
		if pe.task == "" {
			pe.hash = LeafHash(leaf) // else hashed once linked, by the sequencer
		}
		r.entries[i] = pe
	}
	if l.cfg.OnCommit != nil {
		r.events = asRecorded(events, r.entries)
	}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return 0, ErrClosed
	}
	select {
	case l.reqs <- r:
	case <-ctx.Done():
		l.mu.RUnlock()
		return 0, ctx.Err()
	}
	l.mu.RUnlock()
	select {
	case res := <-r.reply:
		return res.first, res.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// asRecorded returns copies of events as their leaves record them, for
// OnCommit: what a reader of the leaves finds. The canonical data is the
// part of the leaf encoding wrote it to (capped, so that appending to it
// cannot reach the leaf).
func asRecorded(events []Event, entries []pendingEntry) []Event {
	out := make([]Event, len(events))
	for i, e := range events {
		e.Time = e.Time.UTC()
		if e.Data != nil {
			s := entries[i].slots
			e.Data = entries[i].leaf[s.data:s.dataEnd:s.dataEnd]
		}
		out[i] = e
	}
	return out
}

// Close stops taking appends, commits everything already queued, signs a
// final checkpoint and returns. It does not close the store.
func (l *Ledger) Close(ctx context.Context) error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.reqs)
	}
	l.mu.Unlock()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
