package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/bodyenc"
	"github.com/writhq/writ/internal/store/leafenc"
	"github.com/writhq/writ/internal/store/sqlite"
	"github.com/writhq/writ/internal/store/storetest"
)

// callEvent is the n-th of a task's tool calls, the call of
// storetest.PolicyInput: most of its leaf the same as the call before's,
// and much of its policy input the same as its leaf.
func callEvent(n int) ledger.Event {
	return ledger.Event{Type: "action.authorized", TaskID: "tsk_3yq5lk2m7ezqv6ahb4xw2nrc7u",
		Principal: "oidc:https://login.example.com/#u-8841", Agent: "spiffe://corp.example/ns/agents/sa/reporter",
		PolicyVersion: "sha256:74162983d51dbdf373f08c529124468db5c7278b55e7f63a7208a5a243e30d1d",
		JTI:           "kQ2m9x7Lw0pT4vB8nR1sYg",
		Data:          json.RawMessage(fmt.Sprintf(`{"action_id":"act_%026d","operation":"read","resource":"s3://reports/2026/q3.pdf","tool":"reports.fetch"}`, n)),
		Bodies:        map[string][]byte{"input": bytes.Replace(storetest.PolicyInput, []byte(`"action"`), []byte(fmt.Sprintf(`"action","n":%d`, n)), 1)}}
}

// TestLeavesCompressed: past the first span, a writ ledger's leaves are kept
// compressed against the span's dictionary, in under a third of their
// bytes; the leaves that dictionary is made of are kept as they are; and
// the log verifies, read back through a new handle.
func TestLeavesCompressed(t *testing.T) {
	ctx := context.Background()
	path, s, kp := appendCalls(t, leafenc.SpanSize+600)
	rows, err := s.DB().QueryContext(ctx, `SELECT idx >= ?, enc, count(*), sum(length(leaf)) FROM leaves GROUP BY 1, 2 ORDER BY 1, 2`, leafenc.SpanSize)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]int{}
	for rows.Next() {
		var later, enc, count, bytes int
		if err := rows.Scan(&later, &enc, &count, &bytes); err != nil {
			t.Fatal(err)
		}
		got[fmt.Sprintf("span %d, encoding %d", later, enc)] = [2]int{count, bytes / count}
	}
	rows.Close()
	if c := got["span 0, encoding 0"][0]; c != leafenc.SpanSize {
		t.Errorf("span 0: %d leaves kept as they are, want all %d (%v)", c, leafenc.SpanSize, got)
	}
	plain, packed := got["span 0, encoding 0"][1], got["span 1, encoding 1"]
	t.Logf("leaves: %v", got)
	if packed[0] < 590 || packed[1] > plain/3 {
		t.Errorf("span 1: %d leaves compressed, %d bytes each; span 0 keeps %d bytes each (%v)", packed[0], packed[1], plain, got)
	}
	var fixed, span int
	if err := s.DB().QueryRowContext(ctx, `SELECT CAST(avg(length(data)) AS INTEGER) FROM bodies WHERE idx < ? AND enc = ?`, leafenc.SpanSize, bodyenc.Dict1).Scan(&fixed); err != nil {
		t.Fatal(err)
	}
	if err := s.DB().QueryRowContext(ctx, `SELECT CAST(avg(length(data)) AS INTEGER) FROM bodies WHERE idx >= ? AND enc = ?`, leafenc.SpanSize, bodyenc.Dict1Span).Scan(&span); err != nil {
		t.Fatal(err)
	}
	t.Logf("policy inputs: %d bytes each against the fixed dictionary, %d against the span's", fixed, span)
	if span == 0 || span >= fixed {
		t.Errorf("policy inputs past the first span kept in %d bytes each, in span 0 in %d", span, fixed)
	}
	storetest.Verify(t, openStore(t, path), kp)
}

// appendCalls appends n calls (callEvent) to a new ledger in a new store,
// and returns the store's path, the store and the ledger's key.
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
		if _, err := l.Append(ctx, callEvent(i)); err != nil {
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
	got, err := s.ReadLeaves(ctx, 0, 10)
	if err != nil || len(got) != 5 {
		t.Fatalf("ReadLeaves: %d leaves, %v", len(got), err)
	}
	for i, g := range got {
		if want := fmt.Sprintf(`{"n":%d}`, i); string(g) != want {
			t.Errorf("leaf %d: %q, want %q", i, g, want)
		}
	}
}

func openRaw(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}
