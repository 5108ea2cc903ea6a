package task

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/writhq/writ/internal/ledger"
)

// The latest snapshot (snapshot.go) is one row of the table task_snapshot,
// in the store's database beside the projection tables, and its encoding
// in the rows of task_snapshot_part, partSize bytes each (the last fewer),
// numbered from 0: a large state is written and read a part at a time, not
// as one value the database driver copies whole. The row names the ledger
// prefix it covers — the index of its last event, that event's leaf hash,
// and the size of the log when it was taken — and carries a keyed MAC of
// all of it and of the SHA-256 of the parts' bytes in order, under
// Config.DigestKey, so that a start loads only a snapshot writ wrote, of
// this very ledger, with no part missing, moved or changed. With replicas
// the rows are shared: any may write them, and a write never replaces a
// snapshot that covers more of the log. The row's state column, where
// version 3 and before kept the whole encoding, is left empty.

const snapshotSchema = `CREATE TABLE IF NOT EXISTS task_snapshot (id INTEGER PRIMARY KEY, version INTEGER NOT NULL,
  through BIGINT NOT NULL, size BIGINT NOT NULL, leaf_hash BLOB NOT NULL, mac BLOB NOT NULL, state BLOB NOT NULL)`

const snapshotPartSchema = `CREATE TABLE IF NOT EXISTS task_snapshot_part (part INTEGER PRIMARY KEY, data BLOB NOT NULL)`

const macSnapshot = "writ/task-snapshot/v2"

// storedSnapshot is the row, and its parts put back together.
type storedSnapshot struct {
	version       uint64
	through, size uint64
	leafHash, mac []byte
	// state is the encoding; sum its SHA-256, which the MAC covers.
	state, sum []byte
}

func (d dialect) blobs(schema string) string {
	if d == dialectPostgres {
		return strings.ReplaceAll(schema, "BLOB", "BYTEA")
	}
	return schema
}

// createSnapshotTable creates the tables unless they exist.
func createSnapshotTable(ctx context.Context, db *sql.DB, d dialect) error {
	for _, schema := range []string{snapshotSchema, snapshotPartSchema} {
		var err error
		if d == dialectPostgres {
			err = createLocked(ctx, db, d.blobs(schema))
		} else {
			_, err = db.ExecContext(ctx, d.blobs(schema))
		}
		if err != nil {
			return fmt.Errorf("creating the task snapshot tables: %w", err)
		}
	}
	return nil
}

// readSnapshot returns the stored snapshot, or nil when there is none (or
// no table). Its parts are read only when it is of this version: another
// is not loaded. Given the database, it reads the row and the parts in one
// transaction, so that a replica writing a snapshot meanwhile is not seen
// half way.
func readSnapshot(ctx context.Context, db sqlQuerier, d dialect) (*storedSnapshot, error) {
	if pool, ok := db.(*sql.DB); ok {
		opts := &sql.TxOptions{}
		if d == dialectPostgres {
			opts = &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}
		}
		tx, err := pool.BeginTx(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("reading the task snapshot: %w", err)
		}
		defer tx.Rollback()
		db = tx
	}
	var r storedSnapshot
	var through, size int64
	err := db.QueryRowContext(ctx, `SELECT version, through, size, leaf_hash, mac FROM task_snapshot WHERE id = 1`).
		Scan(&r.version, &through, &size, &r.leafHash, &r.mac)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		if ok, terr := d.hasTable(ctx, db, "task_snapshot"); terr == nil && !ok {
			return nil, nil
		}
		return nil, fmt.Errorf("reading the task snapshot: %w", err)
	}
	if through < 0 || size <= through {
		return nil, fmt.Errorf("%w: covers index %d of a log of %d", errCorrupt, through, size)
	}
	r.through, r.size = uint64(through), uint64(size)
	if r.version != snapshotVersion {
		return &r, nil
	}
	if r.state, err = readParts(ctx, db); err != nil {
		return nil, err
	}
	return &r, nil
}

// readParts returns the stored parts' bytes in order. A part missing
// from the numbers is an error; one changed or moved is for the MAC to
// find.
func readParts(ctx context.Context, db sqlQuerier) ([]byte, error) {
	var n, size int64
	err := db.QueryRowContext(ctx, `SELECT count(*), COALESCE(SUM(LENGTH(data)), 0) FROM task_snapshot_part`).Scan(&n, &size)
	if err != nil {
		return nil, fmt.Errorf("reading the task snapshot's parts: %w", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT part, data FROM task_snapshot_part ORDER BY part`)
	if err != nil {
		return nil, fmt.Errorf("reading the task snapshot's parts: %w", err)
	}
	defer rows.Close()
	b := make([]byte, 0, size)
	var next int64
	for rows.Next() {
		var part int64
		var data sql.RawBytes
		if err := rows.Scan(&part, &data); err != nil {
			return nil, fmt.Errorf("reading the task snapshot's parts: %w", err)
		}
		if part != next {
			return nil, fmt.Errorf("%w: part %d, where part %d was due", errCorrupt, part, next)
		}
		b = append(b, data...)
		next++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the task snapshot's parts: %w", err)
	}
	if next == 0 {
		return nil, fmt.Errorf("%w: no part", errCorrupt)
	}
	return b, nil
}

// writeSnapshot stores r, with the encoding encode hands to put a part at
// a time, unless the stored one covers more of the log (and is not beyond
// it, which no snapshot of this ledger can be); then encode is not called.
// encode returns the encoding's SHA-256, from which, and r, the MAC under
// key is made. It is one transaction: the row is claimed first (on
// PostgreSQL that locks it, so that two replicas do not write parts at
// once), then the parts replaced, then the MAC set.
func writeSnapshot(ctx context.Context, db *sql.DB, d dialect, key []byte, r *storedSnapshot,
	encode func(put func(p []byte) error) (sum []byte, err error)) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("writing the task snapshot: %w", err)
	}
	defer tx.Rollback()
	q := `INSERT INTO task_snapshot (id, version, through, size, leaf_hash, mac, state) VALUES (` + d.placeholders(7) + `)
ON CONFLICT (id) DO UPDATE SET version = excluded.version, through = excluded.through, size = excluded.size,
  leaf_hash = excluded.leaf_hash, mac = excluded.mac, state = excluded.state
WHERE task_snapshot.through <= excluded.through OR task_snapshot.through >= excluded.size OR task_snapshot.version <> excluded.version`
	res, err := tx.ExecContext(ctx, q, 1, int64(r.version), int64(r.through), int64(r.size), r.leafHash, []byte{}, []byte{})
	if err != nil {
		return fmt.Errorf("writing the task snapshot: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err // the stored one covers more
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM task_snapshot_part`); err != nil {
		return fmt.Errorf("writing the task snapshot: %w", err)
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO task_snapshot_part (part, data) VALUES (`+d.placeholders(2)+`)`)
	if err != nil {
		return fmt.Errorf("writing the task snapshot: %w", err)
	}
	defer ins.Close()
	part := 0
	sum, err := encode(func(p []byte) error {
		_, err := ins.ExecContext(ctx, part, p)
		part++
		return err
	})
	if err != nil {
		return fmt.Errorf("writing the task snapshot's part %d: %w", part-1, err)
	}
	r.sum = sum
	r.mac = snapshotMAC(key, r)
	if _, err := tx.ExecContext(ctx, `UPDATE task_snapshot SET mac = `+d.placeholders(1)+` WHERE id = 1`, r.mac); err != nil {
		return fmt.Errorf("writing the task snapshot: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("writing the task snapshot: %w", err)
	}
	return nil
}

// snapshotMAC is HMAC-SHA256 under key of everything in the row but the
// MAC, and of the SHA-256 of the state.
func snapshotMAC(key []byte, r *storedSnapshot) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(macSnapshot))
	h.Write([]byte{0})
	var n [24]byte
	binary.BigEndian.PutUint64(n[0:], r.version)
	binary.BigEndian.PutUint64(n[8:], r.through)
	binary.BigEndian.PutUint64(n[16:], r.size)
	h.Write(n[:])
	h.Write(r.leafHash)
	if r.sum == nil {
		// Read back: the parts' hash is taken here, where checkSnapshot
		// takes the MAC beside the decoding, rather than as they are read.
		sum := sha256.Sum256(r.state)
		r.sum = sum[:]
	}
	h.Write(r.sum)
	return h.Sum(nil)
}

// leafHashAt returns the leaf hash of the event at index.
func leafHashAt(ctx context.Context, store ledger.Store, index uint64) ([]byte, error) {
	leaves, err := store.ReadLeaves(ctx, index, index+1)
	if err != nil {
		return nil, err
	}
	if len(leaves) != 1 {
		return nil, fmt.Errorf("event %d: %w", index, ledger.ErrNotFound)
	}
	return ledger.LeafHash(leaves[0]), nil
}

// checkSnapshot reports why r cannot be loaded over the ledger in store,
// or returns the state it holds. key nil skips the MAC (a reader without
// the key compares the state with a replay instead).
func checkSnapshot(ctx context.Context, store ledger.Store, key []byte, r *storedSnapshot) (*State, snapHeader, error) {
	if r.version != snapshotVersion {
		return nil, snapHeader{}, fmt.Errorf("it is of version %d; this writ reads version %d", r.version, snapshotVersion)
	}
	// The MAC is computed beside the decoding, a pass of its own over
	// hundreds of megabytes for a large state. Decoding is safe on any
	// bytes (FuzzDecodeSnapshot); what it gives is not returned unless the
	// MAC verifies.
	forged := make(chan bool, 1)
	go func() { forged <- key != nil && !hmac.Equal(r.mac, snapshotMAC(key, r)) }()
	st, h, err := checkAgainst(ctx, store, r)
	if <-forged {
		return nil, snapHeader{}, errors.New("its MAC does not verify: it was not written by writ with this ledger's key")
	}
	return st, h, err
}

// checkAgainst is checkSnapshot without the MAC.
func checkAgainst(ctx context.Context, store ledger.Store, r *storedSnapshot) (*State, snapHeader, error) {
	size, err := store.Size(ctx)
	if err != nil {
		return nil, snapHeader{}, err
	}
	if r.size > size || r.through >= size {
		return nil, snapHeader{}, fmt.Errorf("it covers event %d of a log of %d, but the ledger holds %d", r.through, r.size, size)
	}
	lh, err := leafHashAt(ctx, store, r.through)
	if err != nil {
		return nil, snapHeader{}, err
	}
	if !bytes.Equal(lh, r.leafHash) {
		return nil, snapHeader{}, fmt.Errorf("the ledger's event %d is not the one it was taken at", r.through)
	}
	st, h, err := decodeState(r.state)
	if err != nil {
		return nil, h, err
	}
	if h.through != r.through {
		return nil, h, fmt.Errorf("%w: its state is as of event %d, its row says %d", errCorrupt, h.through, r.through)
	}
	return st, h, nil
}

// loadSnapshotBodies reads the bodies State keeps (stateBodies) for a
// state decoded from a snapshot, which holds none: whatever the store
// holds now, so an erasure since is respected. They are read in batches
// (ledger.ReadBodyBatch), not one query each.
func loadSnapshotBodies(ctx context.Context, store ledger.Store, st *State) error {
	tasks := make([]*Task, 0, len(st.order))
	for _, id := range st.order {
		tasks = append(tasks, st.tasks[id])
	}
	err := readBodies(ctx, store, "intent", tasks, func(t *Task) uint64 { return t.RequestedIndex },
		func(t *Task, b []byte) { t.Intent = string(b) })
	if err != nil {
		return err
	}
	var stepUps []*Approval
	for _, a := range st.approvals {
		if a.Kind == KindStepUp {
			stepUps = append(stepUps, a)
		}
	}
	return readBodies(ctx, store, "arguments", stepUps, func(a *Approval) uint64 { return a.RequestedIndex },
		func(a *Approval, b []byte) { a.Arguments = b })
}

// readBodies reads the body named name of the entry at index(x) of each of
// xs, and gives each that has one to set.
func readBodies[T any](ctx context.Context, store ledger.Store, name string, xs []T, index func(T) uint64, set func(T, []byte)) error {
	slices.SortFunc(xs, func(a, b T) int { return cmp.Compare(index(a), index(b)) })
	at := make([]uint64, len(xs))
	for i, x := range xs {
		at[i] = index(x)
	}
	next := 0
	err := ledger.ReadBodyBatch(ctx, store, name, at, func(b ledger.Body) error {
		for next < len(xs) && at[next] < b.Index {
			next++
		}
		if next == len(xs) || at[next] != b.Index {
			return fmt.Errorf("the store answered body %q of entry %d, which was not asked for", name, b.Index)
		}
		set(xs[next], b.Data)
		next++
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading the %s bodies: %w", name, err)
	}
	return nil
}

// snapshotToCheck returns the stored snapshot CheckLedger compares with
// its replay: nil when there is none, or when it is of another version,
// which no start of this writ loads.
func snapshotToCheck(ctx context.Context, q sqlQuerier, store ledger.Store) (*storedSnapshot, error) {
	d := dialectOf(store)
	ok, err := d.hasTable(ctx, q, "task_snapshot")
	if err != nil || !ok {
		return nil, err
	}
	r, err := readSnapshot(ctx, q, d)
	if err != nil {
		if errors.Is(err, errCorrupt) {
			// Reported by the comparison, as a snapshot beyond the log.
			return &storedSnapshot{version: snapshotVersion, through: 1<<63 - 1}, nil
		}
		return nil, err
	}
	if r != nil && r.version != snapshotVersion {
		return nil, nil
	}
	return r, nil
}

// compareSnapshot compares snapshot r with the replayed state st as of its
// index, whose leaf is leaf, and returns what differs.
func compareSnapshot(st *State, r *storedSnapshot, leaf []byte) []string {
	if !bytes.Equal(ledger.LeafHash(leaf), r.leafHash) {
		return []string{fmt.Sprintf("task_snapshot was taken at another event %d than the ledger's", r.through)}
	}
	_, h, err := decodeState(r.state)
	if err != nil {
		return []string{"task_snapshot cannot be read: " + err.Error()}
	}
	// Forget as the snapshot did, on a copy: the replay goes on as is.
	cp, _, err := decodeState(encodeAsIs(st, r.through, h.swept))
	if err != nil {
		return []string{"task_snapshot: the replayed state does not encode: " + err.Error()}
	}
	if want := encodeState(cp, r.through, h.swept); !bytes.Equal(want, r.state) {
		return []string{fmt.Sprintf("task_snapshot: the state it holds as of event %d is not what the ledger implies", r.through)}
	}
	return nil
}
