package ledger

import (
	"context"
	"errors"
	"time"
)

// Errors returned by a Store and by the ledger.
var (
	// ErrNotFound: the tile, leaf, body or checkpoint asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the store's size is not the batch's start; another writer
	// appended first. The caller reloads its state and tries again.
	ErrConflict = errors.New("ledger moved on under this writer")
	// ErrClosed: the ledger is shutting down and takes no more appends.
	ErrClosed = errors.New("ledger is closed")
	// ErrUnavailable: the store could not make a batch durable. Nothing in the
	// batch was acknowledged; callers must fail closed.
	ErrUnavailable = errors.New("ledger unavailable")
)

// Body is a payload stored beside a leaf. The leaf commits to it as
// sha256(salt || data).
type Body struct {
	Index uint64
	Name  string
	Salt  []byte
	Data  []byte
	// Unreadable, set by ScanBodies in place of Data, is why the store
	// cannot give a stored row's bytes back (a row it cannot decode), so
	// that a scan reports the row and goes on.
	Unreadable error
}

// BodyRef names one body of one leaf.
type BodyRef struct {
	Index uint64
	Name  string
}

// StoredCheckpoint is a signed checkpoint as the store keeps it.
type StoredCheckpoint struct {
	Size uint64
	Note []byte
}

// Batch is everything one group commit writes, in one transaction.
type Batch struct {
	// Start is the index of the first leaf; it must equal the store's size.
	Start  uint64
	Leaves [][]byte
	Bodies []Body
	// Erase deletes bodies; the leaves recording the erasure are in Leaves.
	Erase []BodyRef
	// Tiles replaces the stored contents of each tile named.
	Tiles map[TileID][]byte
	// Checkpoint, when not nil, is stored with the batch.
	Checkpoint *StoredCheckpoint
}

// Store is the durable home of a ledger. The ledger package owns this
// interface; store/sqlite and store/postgres implement it.
//
// Implementations must make Commit atomic and durable: when it returns nil,
// every part of the batch survives a crash or power loss; when it returns an
// error, none of it is visible.
type Store interface {
	// Size returns the number of leaves stored.
	Size(ctx context.Context) (uint64, error)
	// Commit writes b atomically and durably. It returns ErrConflict when the
	// store's size is not b.Start.
	Commit(ctx context.Context, b *Batch) error
	// ReadTile returns the stored hashes of a tile (possibly partial), or
	// ErrNotFound.
	ReadTile(ctx context.Context, id TileID) ([]byte, error)
	// ReadLeaves returns the leaves with indexes in [start, end), fewer if the
	// log is shorter.
	ReadLeaves(ctx context.Context, start, end uint64) ([][]byte, error)
	// ScanLeaves calls fn for every stored leaf from start on, in index order,
	// with the index as the store records it. fn must not keep leaf.
	ScanLeaves(ctx context.Context, start uint64, fn func(index uint64, leaf []byte) error) error
	// LatestCheckpoint returns the checkpoint of the largest size, or
	// ErrNotFound when there is none.
	LatestCheckpoint(ctx context.Context) (StoredCheckpoint, error)
	// ScanCheckpoints calls fn for every stored checkpoint in size order.
	ScanCheckpoints(ctx context.Context, fn func(StoredCheckpoint) error) error
	// ReadBody returns one body, or ErrNotFound (never stored, or erased).
	ReadBody(ctx context.Context, ref BodyRef) (Body, error)
	// ScanBodies calls fn for every stored body in (index, name) order.
	ScanBodies(ctx context.Context, fn func(Body) error) error
	// Meta returns a ledger-wide setting (such as the origin), or ErrNotFound.
	Meta(ctx context.Context, key string) (string, error)
	// InitMeta sets key to value unless it is already set, and returns the
	// value in force.
	InitMeta(ctx context.Context, key, value string) (string, error)
	// Close releases the store.
	Close() error
}

// BodyBatchReader is a Store that reads the bodies of one name of many
// entries in few queries; store/sqlite and store/postgres are. A start
// reading back every task's intent uses it (ReadBodyBatch).
type BodyBatchReader interface {
	// ReadBodyBatch calls fn, in index order, with each stored body named
	// name of the entries at indexes (ascending); an entry without one
	// (never stored, or erased) is passed over. It returns fn's error.
	ReadBodyBatch(ctx context.Context, name string, indexes []uint64, fn func(Body) error) error
}

// ReadBodyBatch is store's ReadBodyBatch when it is a BodyBatchReader,
// else the same answer read one body at a time.
func ReadBodyBatch(ctx context.Context, store Store, name string, indexes []uint64, fn func(Body) error) error {
	if br, ok := store.(BodyBatchReader); ok {
		return br.ReadBodyBatch(ctx, name, indexes, fn)
	}
	for _, i := range indexes {
		b, err := store.ReadBody(ctx, BodyRef{Index: i, Name: name})
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

// LockedReader is what the sequencer of a shared store reads while it holds
// the log's write lock: a view of the store no other writer can change.
type LockedReader interface {
	Size(ctx context.Context) (uint64, error)
	ReadTile(ctx context.Context, id TileID) ([]byte, error)
	LatestCheckpoint(ctx context.Context) (StoredCheckpoint, error)
	// ReadLeaves is Store.ReadLeaves: the sequencer reads the leaves other
	// writers appended, for the task chains.
	ReadLeaves(ctx context.Context, start, end uint64) ([][]byte, error)
}

// SharedStore is a Store that several ledgers (writ replicas) append to at
// once; store/postgres is one. Sequencing is serialized in the store: each
// batch is stamped while its writer holds the log's write lock, so the log
// never forks and no writer starves.
type SharedStore interface {
	Store
	// Sequence takes the log's write lock in a new transaction and calls
	// stamp with a reader of the store as of the lock. known is the size
	// the caller last saw: when the store's differs, the reader may have
	// fetched what catching up needs with the lock. It writes the batch
	// stamp returns (whose Start must be the size) atomically and durably,
	// or nothing when stamp returns nil or an error. When the final commit
	// fails, whether the batch was written may be unknown: the caller must
	// read the size again before trusting its own view.
	//
	// stamp may be called twice: first with an AheadReader, before the
	// lock, and then, when the store finds under the lock that the batch
	// does not fit (or stamp returned nil), again with a reader under the
	// lock. Each call must stamp from the caller's state as it was before
	// the first: only the last call's batch is ever written.
	Sequence(ctx context.Context, known uint64, stamp func(ctx context.Context, r LockedReader) (*Batch, error)) error
}

// AheadReader is the LockedReader a shared store passes to stamp before it
// holds the lock, when the head is where the caller's own last commit left
// it (known) as far as the store knows: it lets the store send the lock,
// the batch and the COMMIT in one round trip. Its size is known, its
// checkpoint state the one that commit left, and its checkpoint age an
// upper bound. The store writes the batch only if, once it holds the
// lock, the head's size and checkpoint size are still those. When the
// writer names the interval it compares the checkpoint's age with
// (UseCheckpointInterval), the database's own age under the lock decides,
// as it would for a batch stamped there: at least the interval, the
// batch's checkpoint is stored, and a batch without one is refused; less,
// the batch is written without its checkpoint. A refused batch is not
// written: the store calls stamp again under the lock. So does a stamp
// that returns ErrLockNeeded; one that returns nil writes nothing and
// takes no lock.
type AheadReader interface {
	LockedReader
	CheckpointStater
	// UseCheckpointInterval names the interval the writer compares the
	// checkpoint's age with for this batch.
	UseCheckpointInterval(d time.Duration)
	// CheckpointStored reports, once Sequence has returned nil after
	// writing the batch stamped on this reader, whether its checkpoint was
	// stored.
	CheckpointStored() bool
}

// ErrLockNeeded is returned by a stamp given an AheadReader when what to
// write must be decided under the lock: the store then calls it again with
// the lock's reader.
var ErrLockNeeded = errors.New("ledger: to be stamped under the lock")

// CheckpointStater is implemented by a LockedReader that knows, without a
// read, the size of the latest stored checkpoint and how long ago it was
// stored (by any writer). Writers sharing a store then keep one checkpoint
// interval between them rather than one each.
type CheckpointStater interface {
	LatestCheckpointState() (size uint64, age time.Duration, ok bool)
}
