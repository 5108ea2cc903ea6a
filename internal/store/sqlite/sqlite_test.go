package sqlite_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/sqlite"
)

func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func leafN(i uint64) []byte { return []byte(fmt.Sprintf(`{"n":%d}`, i)) }

func hashN(i uint64) []byte {
	h := sha256.Sum256(leafN(i))
	return h[:]
}

// batch returns a batch of n leaves from start, with one body each and the
// level-0 tile as it would be after it.
func batch(start, n uint64) *ledger.Batch {
	b := &ledger.Batch{Start: start, Tiles: map[ledger.TileID][]byte{}}
	var tile []byte
	for i := uint64(0); i < start+n; i++ {
		tile = append(tile, hashN(i)...)
	}
	b.Tiles[ledger.TileID{Level: 0, Index: 0}] = tile
	for i := start; i < start+n; i++ {
		b.Leaves = append(b.Leaves, leafN(i))
		b.Bodies = append(b.Bodies, ledger.Body{Index: i, Name: "note", Salt: []byte{byte(i)}, Data: []byte(fmt.Sprintf("body %d", i))})
	}
	b.Checkpoint = &ledger.StoredCheckpoint{Size: start + n, Note: []byte(fmt.Sprintf("checkpoint %d\n", start+n))}
	return b
}

// snapshot is everything a store holds, for before/after comparisons.
type snapshot struct {
	Size        uint64
	Leaves      []string
	Bodies      []string
	Checkpoints []string
	Tile        []byte
}

func snap(t *testing.T, s *sqlite.Store) snapshot {
	t.Helper()
	ctx := context.Background()
	var sn snapshot
	var err error
	if sn.Size, err = s.Size(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.ScanLeaves(ctx, 0, func(i uint64, l []byte) error {
		sn.Leaves = append(sn.Leaves, fmt.Sprintf("%d=%s", i, l))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.ScanBodies(ctx, func(b ledger.Body) error {
		sn.Bodies = append(sn.Bodies, fmt.Sprintf("%d/%s=%x:%s", b.Index, b.Name, b.Salt, b.Data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.ScanCheckpoints(ctx, func(cp ledger.StoredCheckpoint) error {
		sn.Checkpoints = append(sn.Checkpoints, fmt.Sprintf("%d=%s", cp.Size, cp.Note))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sn.Tile, err = s.ReadTile(ctx, ledger.TileID{})
	if err != nil && !errors.Is(err, ledger.ErrNotFound) {
		t.Fatal(err)
	}
	return sn
}

func TestCommitIsAtomic(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), sqlite.FileName))
	if err := s.Commit(ctx, batch(0, 3)); err != nil {
		t.Fatal(err)
	}
	before := snap(t, s)

	tests := []struct {
		name     string
		b        *ledger.Batch
		conflict bool
	}{
		{"start behind the store", batch(2, 4), true},
		{"start ahead of the store", batch(5, 2), true},
		{"start at zero again", batch(0, 1), true},
		{"fails part way: a body twice", func() *ledger.Batch {
			b := batch(3, 3)
			b.Bodies = append(b.Bodies, b.Bodies[0])
			return b
		}(), false},
		{"fails part way: a body of an erased pair", func() *ledger.Batch {
			b := batch(3, 200) // more rows than one multi-row insert holds
			b.Erase = []ledger.BodyRef{{Index: 0, Name: "note"}}
			b.Bodies = append(b.Bodies, ledger.Body{Index: 4, Name: "note", Salt: []byte{1}, Data: []byte("dup")})
			return b
		}(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every part of the batch would change something visible.
			tt.b.Erase = append(tt.b.Erase, ledger.BodyRef{Index: 1, Name: "note"})
			tt.b.Tiles[ledger.TileID{Level: 0, Index: 0}] = bytes.Repeat([]byte{0xee}, 32*9)
			err := s.Commit(ctx, tt.b)
			if err == nil {
				t.Fatal("Commit succeeded")
			}
			if got := errors.Is(err, ledger.ErrConflict); got != tt.conflict {
				t.Errorf("errors.Is(%v, ErrConflict) = %v, want %v", err, got, tt.conflict)
			}
			if diff := cmp.Diff(before, snap(t, s)); diff != "" {
				t.Errorf("a failed Commit changed the store (-before +after):\n%s", diff)
			}
		})
	}
	// The store still takes the right batch.
	if err := s.Commit(ctx, batch(3, 2)); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Size(ctx); n != 5 {
		t.Errorf("size %d, want 5", n)
	}
}

func TestCommitCancelledWritesNothing(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), sqlite.FileName))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Commit(ctx, batch(0, 2)); err == nil {
		t.Fatal("Commit with a cancelled context succeeded")
	}
	if sn := snap(t, s); sn.Size != 0 || len(sn.Bodies) != 0 || len(sn.Checkpoints) != 0 || sn.Tile != nil {
		t.Errorf("a cancelled Commit wrote %+v", sn)
	}
}

func TestDurabilitySettings(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), sqlite.FileName))
	db := s.DB()
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode %q, want wal", mode)
	}
	var sync int
	if err := db.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if sync != 2 {
		t.Errorf("synchronous = %d, want 2 (FULL): a committed batch could be lost on power failure", sync)
	}
	var busy int
	if err := db.QueryRow(`PRAGMA busy_timeout`).Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if busy <= 0 {
		t.Errorf("busy_timeout %d: a concurrent reader would make commits fail at once", busy)
	}
}

func TestReadOrdering(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), sqlite.FileName))
	// Bodies go in out of order, within and across batches.
	b1 := &ledger.Batch{Start: 0, Leaves: [][]byte{leafN(0), leafN(1), leafN(2)},
		Bodies: []ledger.Body{
			{Index: 2, Name: "zeta", Salt: []byte{1}, Data: []byte("2z")},
			{Index: 0, Name: "note", Salt: []byte{2}, Data: []byte("0n")},
			{Index: 2, Name: "alpha", Salt: []byte{3}, Data: []byte("2a")},
		},
		Checkpoint: &ledger.StoredCheckpoint{Size: 3, Note: []byte("cp3")}}
	b2 := &ledger.Batch{Start: 3, Leaves: [][]byte{leafN(3), leafN(4)},
		Bodies:     []ledger.Body{{Index: 4, Name: "b", Salt: []byte{4}, Data: []byte("4b")}, {Index: 3, Name: "a", Salt: []byte{5}, Data: []byte("3a")}},
		Checkpoint: &ledger.StoredCheckpoint{Size: 5, Note: []byte("cp5")}}
	b0 := &ledger.Batch{Start: 0, Checkpoint: &ledger.StoredCheckpoint{Size: 0, Note: []byte("cp0")}}
	for _, b := range []*ledger.Batch{b0, b1, b2} {
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// A second checkpoint for a size keeps the first.
	if err := s.Commit(ctx, &ledger.Batch{Start: 5, Checkpoint: &ledger.StoredCheckpoint{Size: 5, Note: []byte("other")}}); err != nil {
		t.Fatal(err)
	}

	readTests := []struct {
		start, end uint64
		want       []uint64
	}{
		{0, 5, []uint64{0, 1, 2, 3, 4}},
		{1, 3, []uint64{1, 2}},
		{3, 100, []uint64{3, 4}},
		{5, 9, nil},
		{4, 2, nil},
	}
	for _, tt := range readTests {
		got, err := s.ReadLeaves(ctx, tt.start, tt.end)
		if err != nil {
			t.Fatal(err)
		}
		var want [][]byte
		for _, i := range tt.want {
			want = append(want, leafN(i))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ReadLeaves(%d, %d) (-want +got):\n%s", tt.start, tt.end, diff)
		}
	}

	var scanned []string
	if err := s.ScanLeaves(ctx, 2, func(i uint64, l []byte) error {
		scanned = append(scanned, fmt.Sprintf("%d=%s", i, l))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{`2={"n":2}`, `3={"n":3}`, `4={"n":4}`}, scanned); diff != "" {
		t.Errorf("ScanLeaves from 2 (-want +got):\n%s", diff)
	}
	stop := errors.New("stop")
	calls := 0
	if err := s.ScanLeaves(ctx, 0, func(uint64, []byte) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("ScanLeaves returned %v after %d calls; want fn's error after 1", err, calls)
	}

	var bodies []string
	if err := s.ScanBodies(ctx, func(b ledger.Body) error {
		bodies = append(bodies, fmt.Sprintf("%d/%s=%s", b.Index, b.Name, b.Data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"0/note=0n", "2/alpha=2a", "2/zeta=2z", "3/a=3a", "4/b=4b"}, bodies); diff != "" {
		t.Errorf("ScanBodies order (-want +got):\n%s", diff)
	}

	var cps []string
	if err := s.ScanCheckpoints(ctx, func(cp ledger.StoredCheckpoint) error {
		cps = append(cps, fmt.Sprintf("%d=%s", cp.Size, cp.Note))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"0=cp0", "3=cp3", "5=cp5"}, cps); diff != "" {
		t.Errorf("ScanCheckpoints (-want +got):\n%s", diff)
	}
	latest, err := s.LatestCheckpoint(ctx)
	if err != nil || latest.Size != 5 || string(latest.Note) != "cp5" {
		t.Errorf("LatestCheckpoint = %d %q (%v), want 5 cp5", latest.Size, latest.Note, err)
	}
	b, err := s.ReadBody(ctx, ledger.BodyRef{Index: 2, Name: "alpha"})
	if err != nil || string(b.Data) != "2a" || !bytes.Equal(b.Salt, []byte{3}) {
		t.Errorf("ReadBody = %+v (%v)", b, err)
	}
}

func TestNotFound(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), sqlite.FileName))
	if _, err := s.LatestCheckpoint(ctx); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("LatestCheckpoint on an empty store: %v", err)
	}
	if _, err := s.ReadTile(ctx, ledger.TileID{Level: 0, Index: 0}); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("ReadTile: %v", err)
	}
	if _, err := s.ReadBody(ctx, ledger.BodyRef{Index: 0, Name: "x"}); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("ReadBody: %v", err)
	}
	if _, err := s.Meta(ctx, "origin"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Meta: %v", err)
	}
	if n, err := s.Size(ctx); n != 0 || err != nil {
		t.Errorf("Size = %d, %v", n, err)
	}
	if err := s.Commit(ctx, batch(0, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, &ledger.Batch{Start: 1, Erase: []ledger.BodyRef{{Index: 0, Name: "note"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadBody(ctx, ledger.BodyRef{Index: 0, Name: "note"}); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("ReadBody of an erased body: %v", err)
	}
}

func TestInitMetaKeepsTheFirstValue(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	s := openStore(t, path)
	for _, try := range []string{"first", "second", ""} {
		got, err := s.InitMeta(ctx, "origin", try)
		if err != nil {
			t.Fatal(err)
		}
		if got != "first" {
			t.Errorf("InitMeta(origin, %q) = %q, want first", try, got)
		}
	}
	s.Close()
	s = openStore(t, path)
	if v, err := s.Meta(ctx, "origin"); err != nil || v != "first" {
		t.Errorf("after reopen Meta = %q, %v", v, err)
	}
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	s := openStore(t, path)
	if err := s.Commit(ctx, batch(0, 4)); err != nil {
		t.Fatal(err)
	}
	want := snap(t, s)
	s.Close()
	for i := range 3 {
		s := openStore(t, path)
		if diff := cmp.Diff(want, snap(t, s)); diff != "" {
			t.Fatalf("reopen %d changed the store (-want +got):\n%s", i, diff)
		}
		s.Close()
	}
	if v := userVersion(t, path); v < 1 {
		t.Errorf("user_version %d after migrations", v)
	}
}

func userVersion(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	s := openStore(t, path)
	if err := s.Commit(ctx, batch(0, 1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	newer := userVersion(t, path) + 1
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, newer)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s2, err := sqlite.Open(ctx, path)
	if err == nil {
		s2.Close()
		t.Fatal("opened a database with a newer schema")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q does not say the schema is newer", err)
	}
	if v := userVersion(t, path); v != newer {
		t.Errorf("a refused open changed user_version to %d", v)
	}
}

// TestBodiesMigration opens a store written by the first schema, whose
// bodies table had no rowid, and finds every body intact in the table that
// replaced it.
func TestBodiesMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{
		`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID`,
		`CREATE TABLE leaves (idx INTEGER PRIMARY KEY, leaf BLOB NOT NULL)`,
		`CREATE TABLE bodies (idx INTEGER NOT NULL, name TEXT NOT NULL, salt BLOB NOT NULL, data BLOB NOT NULL,
		 PRIMARY KEY (idx, name)) WITHOUT ROWID`,
		`CREATE TABLE tiles (level INTEGER NOT NULL, idx INTEGER NOT NULL, hashes BLOB NOT NULL,
		 PRIMARY KEY (level, idx)) WITHOUT ROWID`,
		`CREATE TABLE checkpoints (size INTEGER PRIMARY KEY, note BLOB NOT NULL)`,
		`INSERT INTO bodies VALUES (0, 'input', x'0102', 'first'), (0, 'output', x'03', 'second'), (1, 'input', x'04', 'third')`,
		`PRAGMA user_version = 1`,
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s := openStore(t, path)
	var got []string
	err = s.ScanBodies(ctx, func(b ledger.Body) error {
		got = append(got, fmt.Sprintf("%d/%s/%x/%s", b.Index, b.Name, b.Salt, b.Data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0/input/0102/first", "0/output/03/second", "1/input/04/third"}
	if !slices.Equal(got, want) {
		t.Errorf("bodies after migration: %q, want %q", got, want)
	}
	var ddl string
	if err := s.DB().QueryRow(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'bodies'`).Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToUpper(ddl), "WITHOUT ROWID") {
		t.Errorf("bodies is still a WITHOUT ROWID table: %s", ddl)
	}
	s.Close()
}
