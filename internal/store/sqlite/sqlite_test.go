package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/sqlite"
	"github.com/writhq/writ/internal/store/storetest"
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
	if err := s.Commit(ctx, storetest.Batch(0, 1)); err != nil {
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

// TestBodiesCompressed: a policy input is kept compressed, a short body as
// it is.
func TestBodiesCompressed(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), sqlite.FileName))
	storetest.BodiesCompressed(t, s, s.DB())
}

// Under steady appends the checkpointer lets the write-ahead log start over
// at its beginning once it is long, so that commits write over the file's
// blocks rather than grow it (a cheaper fsync), and the file stays bounded.
func TestLogStartsOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	s := openStore(t, path)
	ctx := context.Background()
	const commits = 8000
	done := make(chan error, 1)
	go func() {
		for i := range uint64(commits) {
			b := &ledger.Batch{Start: i, Leaves: [][]byte{fmt.Appendf(nil, "leaf %d", i)},
				Tiles: map[ledger.TileID][]byte{{Level: 0, Index: i}: make([]byte, 32)}}
			if err := s.Commit(ctx, b); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	// Checkpoints as the background checkpointer makes them, but often.
	var maxWAL int64
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
			if err := s.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if fi, err := os.Stat(path + "-wal"); err == nil {
			maxWAL = max(maxWAL, fi.Size())
		}
	}
	if got, err := s.Size(ctx); err != nil || got != commits {
		t.Fatalf("size %d (%v), want %d", got, err, commits)
	}
	// Each commit writes a few frames; the log never holding much more
	// than restartFrames of them means it started over again and again.
	if limit := int64(4 * sqlite.RestartFrames * (4096 + 24)); maxWAL > limit {
		t.Fatalf("the log grew to %d bytes over %d commits (limit %d): it did not start over", maxWAL, commits, limit)
	}
	t.Logf("largest log: %d bytes", maxWAL)
}
