package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/leafenc"
	"github.com/writhq/writ/internal/store/sqlite"
	"github.com/writhq/writ/internal/store/storetest"
)

// TestLeavesCompressed: past the first span, a writ ledger's leaves are kept
// compressed against the span's dictionary, in under a third of their
// bytes; the leaves that dictionary is made of are kept as they are; and
// the log verifies, read back through a new handle.
func TestLeavesCompressed(t *testing.T) {
	path, s, kp := appendCalls(t, leafenc.SpanSize+600)
	storetest.LeavesCompressed(t, s.DB())
	storetest.Verify(t, openStore(t, path), kp)
}

// appendCalls appends n calls (storetest.CallEvent) to a new ledger in a
// new store, and returns the store's path, the store and the ledger's key.
func appendCalls(t *testing.T, n int) (string, *sqlite.Store, *ledger.KeyPair) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	s := openStore(t, path)
	kp := storetest.NewKey(t, "sqlite.example/log")
	l, err := ledger.New(ctx, ledger.Config{Store: s, Signer: kp})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := l.Append(ctx, storetest.CallEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return path, s, kp
}

// TestLeafDictionaryDamaged: a leaf of a span's dictionary changed on disk
// makes the span's compressed leaves read wrong or not at all, and
// verification fails; nothing panics and nothing passes.
func TestLeafDictionaryDamaged(t *testing.T) {
	ctx := context.Background()
	path, s, kp := appendCalls(t, leafenc.SpanSize+50)
	later := uint64(leafenc.SpanSize + 20)
	before, err := s.ReadLeaves(ctx, later, later+1)
	if err != nil {
		t.Fatal(err)
	}
	start, end, _ := leafenc.Refs(1)
	if _, err := s.DB().ExecContext(ctx, `UPDATE leaves SET leaf = replace(leaf, 'reports.fetch', 'reports.purge') WHERE idx >= ? AND idx < ?`, start, end); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, path)
	if after, err := s.ReadLeaves(ctx, later, later+1); err == nil && bytes.Equal(after[0], before[0]) {
		t.Errorf("leaf %d reads the same against a damaged dictionary", later)
	}
	rep, err := ledger.Verify(ctx, s, kp.Verifier(), "")
	if err == nil && rep.OK() {
		t.Fatal("a log with a damaged leaf verified")
	}
}

// TestLeavesMigration: leaves written before leaves named their encoding
// read back as they are, and new ones append after them.
func TestLeavesMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	s := openStore(t, path)
	b := storetest.Batch(0, 3)
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db := openRaw(t, path)
	// Back to schema 6: the tiles whole again and the column gone.
	downgradeTiles(t, db)
	for _, q := range []string{`ALTER TABLE leaves DROP COLUMN enc`, `PRAGMA user_version = 6`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s = openStore(t, path)
	if err := s.Commit(ctx, storetest.Batch(3, 2)); err != nil {
		t.Fatal(err)
	}
	storetest.HoldsBatches(t, s, 5)
}

func openRaw(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}
