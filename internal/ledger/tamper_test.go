package ledger_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/internal/cli"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/sqlite"
)

// tamperBaseSize gives a full tile 0/0, a partial edge tile 0/1 and a
// one-hash tile 1/0.
const tamperBaseSize = 300

// tamperBase is a closed data directory holding tamperBaseSize events with
// bodies and a checkpoint for every batch.
type tamperBase struct {
	dir    string
	vkey   string
	origin string
	sizes  []uint64 // sizes of the stored checkpoints
}

func buildTamperBase(t *testing.T) tamperBase {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "base")
	d, l := openDir(t, dir, func(c *ledger.Config) { c.CheckpointInterval = 0 })
	// The first events go in one by one, so event i (i < 20) holds n = i and
	// has an "args" body when i is a multiple of 3.
	appendMany(t, l, 0, 20, 1, true)
	appendMany(t, l, 20, tamperBaseSize-20, 16, true)
	b := tamperBase{dir: dir, vkey: d.VerifierKey, origin: d.Origin}
	closeAll(t, d, l)
	st := reopenStore(t, dir)
	if err := st.ScanCheckpoints(context.Background(), func(cp ledger.StoredCheckpoint) error {
		b.sizes = append(b.sizes, cp.Size)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if len(b.sizes) < 3 || b.sizes[len(b.sizes)-1] != tamperBaseSize {
		t.Fatalf("base ledger has checkpoints %v; want several, the last at %d", b.sizes, tamperBaseSize)
	}
	return b
}

// rawDB opens the SQLite file of a closed data directory behind writ's back.
func rawDB(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.FileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func execSQL(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	res, err := db.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatalf("%s changed no row", q)
	}
}

func blob(t *testing.T, db *sql.DB, q string, args ...any) []byte {
	t.Helper()
	var b []byte
	if err := db.QueryRow(q, args...).Scan(&b); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return b
}

// flipByte returns b with the byte at i changed.
func flipByte(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

// mustReplace replaces old by new exactly once.
func mustReplace(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	if bytes.Count(b, []byte(old)) != 1 {
		t.Fatalf("%q occurs %d times in %s", old, bytes.Count(b, []byte(old)), b)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

type wantFailure struct {
	check string
	index int64 // -1: none applies; anyIndex: any
	// cliOnly: reported by the CLI, not by ledger.Verify (the pinned-key check).
	cliOnly bool
}

// runVerifyCLI runs 'writ ledger verify' and returns its exit status and
// output.
func runVerifyCLI(t *testing.T, dir string, extra ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args := append([]string{"ledger", "verify", "--data-dir", dir}, extra...)
	code := cli.Main(context.Background(), args, cli.IO{
		Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		Getenv: func(string) string { return "" },
	})
	return code, stdout.String(), stderr.String()
}

type verifyJSON struct {
	OK       bool `json:"ok"`
	Failures []struct {
		Check  string `json:"check"`
		Index  *int64 `json:"index"`
		Detail string `json:"detail"`
	} `json:"failures"`
}

// assertCaught checks that both ledger.Verify (against vkey) and the CLI
// (table and JSON output) report every wanted failure.
func assertCaught(t *testing.T, dir, vkey string, wants []wantFailure, cliArgs ...string) {
	t.Helper()
	st := reopenStore(t, dir)
	rep := verifyStore(t, st, vkey)
	st.Close()
	if rep.OK() {
		t.Fatalf("verification passed a tampered ledger")
	}
	for _, w := range wants {
		if _, ok := findFailure(rep, w.check, w.index); !ok && !w.cliOnly {
			t.Errorf("no %q failure at index %d; got %v", w.check, w.index, firstFailures(rep))
		}
	}

	code, out, errOut := runVerifyCLI(t, dir, cliArgs...)
	if code != 1 {
		t.Errorf("writ ledger verify exited %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "ledger verification failed") {
		t.Errorf("stderr does not say verification failed:\n%s", errOut)
	}
	for _, w := range wants {
		line := "  " + w.check + ": "
		if w.index >= 0 {
			line += fmt.Sprintf("event %d: ", w.index)
		}
		if !strings.Contains(out, line) {
			t.Errorf("table output has no problem line %q:\n%s", line, out)
		}
	}
	code, out, _ = runVerifyCLI(t, dir, append(cliArgs, "-o", "json")...)
	var js verifyJSON
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, out)
	}
	if code != 1 || js.OK {
		t.Errorf("JSON run exited %d with ok=%v", code, js.OK)
	}
	for _, w := range wants {
		found := false
		for _, f := range js.Failures {
			idx := int64(-1)
			if f.Index != nil {
				idx = *f.Index
			}
			if f.Check == w.check && (w.index == anyIndex || idx == w.index) {
				found = true
			}
		}
		if !found {
			t.Errorf("JSON output has no %q failure at index %d: %s", w.check, w.index, out)
		}
	}
}

func TestVerifyCatchesTampering(t *testing.T) {
	base := buildTamperBase(t)

	// The untouched copy verifies, through the library and the CLI.
	clean := copyDataDir(t, base.dir)
	st := reopenStore(t, clean)
	mustVerifyOK(t, st, base.vkey)
	st.Close()
	if code, out, errOut := runVerifyCLI(t, clean); code != 0 || strings.Contains(out, "FAIL") {
		t.Fatalf("clean ledger: exit %d\n%s\n%s", code, out, errOut)
	}

	latest := base.sizes[len(base.sizes)-1]
	older := base.sizes[len(base.sizes)/2]
	tests := []struct {
		name   string
		tamper func(t *testing.T, db *sql.DB)
		want   []wantFailure
	}{
		{"leaf byte changed, still a canonical event", editLeafN, []wantFailure{{"tile", -1, false}, {"checkpoint", -1, false}}},
		{"leaf byte changed, envelope version", func(t *testing.T, db *sql.DB) {
			leaf := blob(t, db, `SELECT leaf FROM leaves WHERE idx = 5`)
			execSQL(t, db, `UPDATE leaves SET leaf = ? WHERE idx = 5`, mustReplace(t, leaf, `"v":2`, `"v":3`))
		}, []wantFailure{{"event", 5, false}, {"tile", -1, false}, {"checkpoint", -1, false}}},
		{"leaf byte changed, not JSON", func(t *testing.T, db *sql.DB) {
			leaf := blob(t, db, `SELECT leaf FROM leaves WHERE idx = 299`)
			execSQL(t, db, `UPDATE leaves SET leaf = ? WHERE idx = 299`, flipByte(leaf, len(leaf)-1))
		}, []wantFailure{{"event", 299, false}, {"tile", -1, false}, {"checkpoint", -1, false}}},
		{"body byte changed", func(t *testing.T, db *sql.DB) {
			data := blob(t, db, `SELECT data FROM bodies WHERE idx = 7 AND name = 'note'`)
			execSQL(t, db, `UPDATE bodies SET data = ? WHERE idx = 7 AND name = 'note'`, flipByte(data, 0))
		}, []wantFailure{{"commitment", 7, false}}},
		{"body row undecodable", func(t *testing.T, db *sql.DB) {
			execSQL(t, db, `UPDATE bodies SET enc = 1, data = x'ff00ff' WHERE idx = 7 AND name = 'note'`)
		}, []wantFailure{{"commitment", 7, false}}},
		{"body row of an unknown encoding", func(t *testing.T, db *sql.DB) {
			execSQL(t, db, `UPDATE bodies SET enc = 9 WHERE idx = 8 AND name = 'note'`)
		}, []wantFailure{{"commitment", 8, false}}},
		{"body salt changed", func(t *testing.T, db *sql.DB) {
			salt := blob(t, db, `SELECT salt FROM bodies WHERE idx = 9 AND name = 'args'`)
			execSQL(t, db, `UPDATE bodies SET salt = ? WHERE idx = 9 AND name = 'args'`, flipByte(salt, 31))
		}, []wantFailure{{"commitment", 9, false}}},
		{"leaf row deleted in the middle", func(t *testing.T, db *sql.DB) {
			execSQL(t, db, `DELETE FROM leaves WHERE idx = 100`)
		}, []wantFailure{{"sequence", 100, false}}},
		{"body row deleted without erasure", func(t *testing.T, db *sql.DB) {
			execSQL(t, db, `DELETE FROM bodies WHERE idx = 8 AND name = 'note'`)
		}, []wantFailure{{"commitment", 8, false}}},
		{"body row added", func(t *testing.T, db *sql.DB) {
			execSQL(t, db, `INSERT INTO bodies(idx, name, salt, data) VALUES (1, 'extra', x'00', x'00')`)
		}, []wantFailure{{"commitment", 1, false}}},
		{"two leaf rows swapped", func(t *testing.T, db *sql.DB) {
			execSQL(t, db, `UPDATE leaves SET idx = -1 WHERE idx = 3`)
			execSQL(t, db, `UPDATE leaves SET idx = 3 WHERE idx = 4`)
			execSQL(t, db, `UPDATE leaves SET idx = 4 WHERE idx = -1`)
		}, []wantFailure{{"tile", -1, false}, {"checkpoint", -1, false}, {"commitment", 3, false}, {"commitment", 4, false}}},
		{"tail truncated", func(t *testing.T, db *sql.DB) {
			execSQL(t, db, `DELETE FROM leaves WHERE idx >= 290`)
		}, []wantFailure{{"checkpoint", -1, false}, {"tile", -1, false}}},
		{"tail truncated with its bodies and checkpoints", func(t *testing.T, db *sql.DB) {
			execSQL(t, db, `DELETE FROM leaves WHERE idx >= 290`)
			execSQL(t, db, `DELETE FROM bodies WHERE idx >= 290`)
			execSQL(t, db, `DELETE FROM checkpoints WHERE size > 290`)
		}, []wantFailure{{"tile", -1, false}}},
		{"checkpoint signature corrupted", func(t *testing.T, db *sql.DB) {
			n := blob(t, db, `SELECT note FROM checkpoints WHERE size = ?`, latest)
			execSQL(t, db, `UPDATE checkpoints SET note = ? WHERE size = ?`, flipByte(n, len(n)-10), latest)
		}, []wantFailure{{"checkpoint", -1, false}}},
		{"checkpoint text changed", func(t *testing.T, db *sql.DB) {
			n := blob(t, db, `SELECT note FROM checkpoints WHERE size = ?`, latest)
			execSQL(t, db, `UPDATE checkpoints SET note = ? WHERE size = ?`,
				mustReplace(t, n, fmt.Sprintf("\n%d\n", latest), fmt.Sprintf("\n%d\n", latest+1)), latest)
		}, []wantFailure{{"checkpoint", -1, false}}},
		{"checkpoint moved to another size", func(t *testing.T, db *sql.DB) {
			n := blob(t, db, `SELECT note FROM checkpoints WHERE size = ?`, older)
			execSQL(t, db, `UPDATE checkpoints SET note = ? WHERE size = ?`, n, latest)
		}, []wantFailure{{"checkpoint", -1, false}}},
		{"checkpoint replaced by one signed with another key of the same name", func(t *testing.T, db *sql.DB) {
			signer, _ := newSigner(t, base.origin)
			body := log.Checkpoint{Origin: base.origin, Size: latest, Hash: bytes.Repeat([]byte{7}, 32)}.Marshal()
			n, err := note.Sign(&note.Note{Text: string(body)}, signer)
			if err != nil {
				t.Fatal(err)
			}
			execSQL(t, db, `UPDATE checkpoints SET note = ? WHERE size = ?`, n, latest)
		}, []wantFailure{{"checkpoint", -1, false}}},
		{"every checkpoint deleted", func(t *testing.T, db *sql.DB) {
			execSQL(t, db, `DELETE FROM checkpoints`)
		}, []wantFailure{{"checkpoint", -1, false}}},
		{"full tile edited", editTile(0, 0, 100), []wantFailure{{"tile", -1, false}}},
		{"edge tile edited", editTile(0, 1, 0), []wantFailure{{"tile", -1, false}}},
		{"upper level tile edited", editTile(1, 0, 31), []wantFailure{{"tile", -1, false}}},
		{"tile deleted", func(t *testing.T, db *sql.DB) {
			execSQL(t, db, `DELETE FROM tiles WHERE level = 0 AND idx = 0`)
		}, []wantFailure{{"tile", -1, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDataDir(t, base.dir)
			db := rawDB(t, dir)
			tt.tamper(t, db)
			db.Close()
			assertCaught(t, dir, base.vkey, tt.want)
		})
	}
}

// editTile returns a tamper that flips byte at of the stored tile
// level/idx: in its row if it is full, else in the run of tile_parts that
// holds that byte (internal/store/tilerun).
func editTile(level, idx, at int) func(*testing.T, *sql.DB) {
	return func(t *testing.T, db *sql.DB) {
		var full int
		if err := db.QueryRow(`SELECT count(*) FROM tiles WHERE level = ? AND idx = ?`, level, idx).Scan(&full); err != nil {
			t.Fatal(err)
		}
		if full == 1 {
			h := blob(t, db, `SELECT hashes FROM tiles WHERE level = ? AND idx = ?`, level, idx)
			execSQL(t, db, `UPDATE tiles SET hashes = ? WHERE level = ? AND idx = ?`, flipByte(h, at), level, idx)
			return
		}
		var pos int
		var h []byte
		err := db.QueryRow(`SELECT pos, hashes FROM tile_parts WHERE level = ? AND idx = ? AND pos * 32 <= ? ORDER BY pos DESC LIMIT 1`,
			level, idx, at).Scan(&pos, &h)
		if err != nil {
			t.Fatalf("tile %d/%d, byte %d: %v", level, idx, at, err)
		}
		execSQL(t, db, `UPDATE tile_parts SET hashes = ? WHERE level = ? AND idx = ? AND pos = ?`, flipByte(h, at-pos*32), level, idx, pos)
	}
}

// storedTiles reads every tile the store keeps, as a forger would, from
// both tables (internal/store/tilerun).
func storedTiles(t *testing.T, db *sql.DB) map[ledger.TileID][]byte {
	t.Helper()
	rows, err := db.Query(`SELECT level, idx, 0, hashes FROM tiles UNION ALL SELECT level, idx, pos, hashes FROM tile_parts ORDER BY 1, 2, 3`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	stored := map[ledger.TileID][]byte{}
	for rows.Next() {
		var id ledger.TileID
		var pos int
		var h []byte
		if err := rows.Scan(&id.Level, &id.Index, &pos, &h); err != nil {
			t.Fatal(err)
		}
		if pos*ledger.HashSize != len(stored[id]) {
			t.Fatalf("tile %v: a run at %d after %d bytes", id, pos, len(stored[id]))
		}
		stored[id] = append(stored[id], h...)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return stored
}

// writeTiles replaces every stored tile with tiles, as writ would keep
// them: full ones in tiles, a partial one as a single run.
func writeTiles(t *testing.T, db *sql.DB, tiles map[ledger.TileID][]byte) {
	t.Helper()
	execSQL(t, db, `DELETE FROM tiles`)
	execSQL(t, db, `DELETE FROM tile_parts`)
	for id, h := range tiles {
		if len(h) == ledger.TileWidth*ledger.HashSize {
			execSQL(t, db, `INSERT INTO tiles(level, idx, hashes) VALUES (?, ?, ?)`, id.Level, id.Index, h)
		} else {
			execSQL(t, db, `INSERT INTO tile_parts(level, idx, pos, hashes) VALUES (?, ?, 0, ?)`, id.Level, id.Index, h)
		}
	}
}

// editLeafN changes the n of event 5 in its stored leaf, which stays a
// canonical event.
func editLeafN(t *testing.T, db *sql.DB) {
	t.Helper()
	leaf := blob(t, db, `SELECT leaf FROM leaves WHERE idx = 5`)
	n := eventN(t, 5, leaf)
	execSQL(t, db, `UPDATE leaves SET leaf = ? WHERE idx = 5`, mustReplace(t, leaf, fmt.Sprintf(`"n":%d`, n), fmt.Sprintf(`"n":%d`, n^1)))
}

// newSigner returns a fresh signing key for origin and its verifier key.
func newSigner(t *testing.T, origin string) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

// computeTiles lays leaves out as tlog-tiles hash tiles, independently of
// the ledger: tile L/K holds the hashes of nodes 256K.. at height 8L.
func computeTiles(leaves [][]byte) map[ledger.TileID][]byte {
	h := rfc6962.DefaultHasher
	level := make([][]byte, len(leaves))
	for i, l := range leaves {
		level[i] = h.HashLeaf(l)
	}
	tiles := map[ledger.TileID][]byte{}
	for height := 0; len(level) > 0; height++ {
		if height%ledger.TileHeight == 0 {
			for i, hash := range level {
				id := ledger.TileID{Level: uint64(height / ledger.TileHeight), Index: uint64(i / ledger.TileWidth)}
				tiles[id] = append(tiles[id], hash...)
			}
		}
		next := make([][]byte, len(level)/2)
		for i := range next {
			next[i] = h.HashChildren(level[2*i], level[2*i+1])
		}
		level = next
	}
	return tiles
}

// forgery rewrites leaf 5 of a copy of base, recomputes every tile and
// re-signs every checkpoint with a fresh key of the same name: a complete,
// self-consistent forgery by someone who has the database but not the key.
// It returns the directory and the forger's verifier key.
func forgery(t *testing.T, base tamperBase) (string, string) {
	t.Helper()
	dir := copyDataDir(t, base.dir)
	db := rawDB(t, dir)
	st := reopenStore(t, dir)
	leaves := readAllLeaves(t, st)
	st.Close()

	// The forger's tiles must be writ's tiles, or the test proves nothing.
	stored := storedTiles(t, db)
	if got := computeTiles(leaves); len(got) != len(stored) {
		t.Fatalf("computed %d tiles, writ stored %d", len(got), len(stored))
	} else {
		for id, h := range got {
			if !bytes.Equal(h, stored[id]) {
				t.Fatalf("computed tile %v differs from writ's", id)
			}
		}
	}

	n := eventN(t, 5, leaves[5])
	leaves[5] = mustReplace(t, leaves[5], fmt.Sprintf(`"n":%d`, n), `"n":555555`)
	execSQL(t, db, `UPDATE leaves SET leaf = ? WHERE idx = 5`, leaves[5])
	writeTiles(t, db, computeTiles(leaves))
	signer, vkey := newSigner(t, base.origin)
	for _, size := range base.sizes {
		body := log.Checkpoint{Origin: base.origin, Size: size, Hash: treeRoot(t, leaves[:size])}.Marshal()
		signed, err := note.Sign(&note.Note{Text: string(body)}, signer)
		if err != nil {
			t.Fatal(err)
		}
		execSQL(t, db, `UPDATE checkpoints SET note = ? WHERE size = ?`, signed, size)
	}
	db.Close()
	return dir, vkey
}

func TestVerifyCatchesTreeResignedWithAnotherKey(t *testing.T) {
	base := buildTamperBase(t)

	t.Run("recorded key untouched", func(t *testing.T) {
		dir, _ := forgery(t, base)
		if d := openReadOnly(t, dir); d.VerifierKey != base.vkey {
			t.Fatalf("recorded key changed to %s", d.VerifierKey)
		}
		assertCaught(t, dir, base.vkey, []wantFailure{{"checkpoint", -1, false}})
		st := reopenStore(t, dir)
		rep := verifyStore(t, st, base.vkey)
		if rep.Checkpoints != len(base.sizes) || rep.LatestCheckpoint != 0 {
			t.Errorf("checked %d checkpoints, latest valid %d; want all %d rejected", rep.Checkpoints, rep.LatestCheckpoint, len(base.sizes))
		}
		if _, ok := findFailure(rep, "checkpoint", -1); !ok || !strings.Contains(fmt.Sprint(rep.Failures), "no valid checkpoint") {
			t.Errorf("failures %v do not say no checkpoint is valid", rep.Failures)
		}
	})

	t.Run("recorded key replaced, original key pinned", func(t *testing.T) {
		dir, forgedKey := forgery(t, base)
		db := rawDB(t, dir)
		execSQL(t, db, `UPDATE meta SET value = ? WHERE key = 'verifier_key'`, forgedKey)
		db.Close()
		// The forgery is complete: against its own key it verifies, which is
		// why an auditor pins the key they got from the log's operator.
		st := reopenStore(t, dir)
		mustVerifyOK(t, st, forgedKey)
		st.Close()
		if code, out, _ := runVerifyCLI(t, dir); code != 0 {
			t.Fatalf("the forged store does not verify against its own key; the forgery is broken:\n%s", out)
		}
		assertCaught(t, dir, base.vkey, []wantFailure{{"checkpoint", -1, false}, {"key", -1, true}}, "--key", base.vkey)
	})
}

// firstFailures lists a few failures for a test message.
func firstFailures(rep *ledger.Report) []ledger.Failure {
	return rep.Failures[:min(len(rep.Failures), 3)]
}

// knownBug fails a test that shows a defect found earlier.
func knownBug(t *testing.T, format string, a ...any) {
	t.Helper()
	t.Fatal("regression: " + fmt.Sprintf(format, a...))
}

func TestVerifyNamesTheEditedLeaf(t *testing.T) {
	base := buildTamperBase(t)
	dir := copyDataDir(t, base.dir)
	db := rawDB(t, dir)
	editLeafN(t, db)
	db.Close()
	st := reopenStore(t, dir)
	rep := verifyStore(t, st, base.vkey)
	for _, f := range rep.Failures {
		if f.Index == 5 {
			return
		}
	}
	knownBug(t, "an edited leaf that is still a canonical event is reported only as tile and checkpoint mismatches with no event index (%v); "+
		"Verify should compare each recomputed leaf hash with the stored level-0 tile and name the first differing index", firstFailures(rep))
}

func TestVerifyReportsAGapOnce(t *testing.T) {
	base := buildTamperBase(t)
	dir := copyDataDir(t, base.dir)
	db := rawDB(t, dir)
	execSQL(t, db, `DELETE FROM leaves WHERE idx = 100`)
	db.Close()
	st := reopenStore(t, dir)
	rep := verifyStore(t, st, base.vkey)
	var seq []ledger.Failure
	for _, f := range rep.Failures {
		if f.Check == "sequence" {
			seq = append(seq, f)
		}
	}
	if len(seq) == 1 && seq[0].Index == 100 && rep.Truncated == 0 {
		return
	}
	knownBug(t, "one missing row (100) gives %d sequence failures (+%d truncated), the first %v: every later event is reported missing "+
		"because Verify compares each index with the tree size, which the gap has put one behind for good", len(seq), rep.Truncated, seq[:min(len(seq), 3)])
}

// TestNewRefusesTamperedStore: a ledger that starts on a store whose tree no
// longer matches its own latest checkpoint must refuse, or it signs the
// tampered tree with the real key and so launders it.
func TestNewRefusesTamperedStore(t *testing.T) {
	base := buildTamperBase(t)
	tests := []struct {
		name  string
		setup func(t *testing.T) string
	}{
		{"edge tile edited", func(t *testing.T) string {
			dir := copyDataDir(t, base.dir)
			db := rawDB(t, dir)
			editTile(0, 1, 0)(t, db)
			return dir
		}},
		{"leaf rewritten, tiles recomputed, checkpoints re-signed by another key", func(t *testing.T) string {
			dir, _ := forgery(t, base)
			return dir
		}},
		{"leaf rewritten, tiles recomputed, checkpoints deleted", func(t *testing.T) string {
			dir, _ := forgery(t, base)
			execSQL(t, rawDB(t, dir), `DELETE FROM checkpoints`)
			return dir
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.setup(t)
			// Before a restart, verification catches it.
			st := reopenStore(t, dir)
			if rep := verifyStore(t, st, base.vkey); rep.OK() {
				t.Fatal("the tampered store verifies before any restart; the setup is wrong")
			}
			st.Close()

			ctx := context.Background()
			d, err := datadirOpenWrite(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			l, err := ledger.New(ctx, ledger.Config{Store: d.Store, Signer: d.Signer})
			if err != nil {
				return // refused: fail closed
			}
			if _, err := l.Append(ctx, testEvent(1_000_000, false)); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(ctx); err != nil {
				t.Fatal(err)
			}
			rep := verifyStore(t, d.Store, base.vkey)
			knownBug(t, "ledger.New started on a store whose tree does not match its latest checkpoint and signed checkpoint %d with the real key over it "+
				"(verification afterwards: ok=%v, %d failures); New should open the latest checkpoint with the signer's verifier and check the loaded "+
				"tree against it (equal root at equal size, a consistency proof from the stored tiles when the store is longer), and refuse a store "+
				"that holds events but no checkpoint (New signs one at size 0 before the first append, so only tampering leaves none)",
				rep.LatestCheckpoint, rep.OK(), len(rep.Failures)+rep.Truncated)
		})
	}
}
