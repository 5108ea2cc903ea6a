package cli

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/writhq/writ/internal/ledger"
)

// TestVerifySince: a checkpoint saved outside writ catches a history
// rewritten together with every checkpoint in the store, which the store
// alone cannot show.
func TestVerifySince(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	events := strings.Repeat(`{"type":"import.test","data":{"n":1}}`+"\n", 300)
	if out, errOut, code := runWritIn(t, events, "ledger", "append", "--data-dir", dir); code != 0 {
		t.Fatalf("append: %d %s%s", code, out, errOut)
	}
	// The auditor saves the checkpoint they saw.
	d := openDir(t, dir)
	cp, err := d.Store.LatestCheckpoint(context.Background())
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(t.TempDir(), "checkpoint")
	os.WriteFile(saved, cp.Note, 0o644)

	if out, errOut, code := runWritIn(t, events, "ledger", "append", "--data-dir", dir); code != 0 {
		t.Fatalf("append: %d %s%s", code, out, errOut)
	}
	out, errOut, code := runWritIn(t, "", "ledger", "verify", "--data-dir", dir, "--since", saved)
	if code != 0 || !strings.Contains(out, "extends the saved checkpoint of size 300") {
		t.Fatalf("verify --since on an honest ledger: %d\n%s%s", code, out, errOut)
	}

	// Someone rewrites event 7, recomputes the tiles, and deletes every
	// checkpoint but the empty tree's; the next start signs the forgery
	// with the real key, so the store is consistent again.
	db, err := sql.Open("sqlite", filepath.Join(dir, "writ.db"))
	if err != nil {
		t.Fatal(err)
	}
	var leaf []byte
	db.QueryRow(`SELECT leaf FROM leaves WHERE idx = 7`).Scan(&leaf)
	forged := []byte(strings.Replace(string(leaf), `"n":1`, `"n":2`, 1))
	mustExec(t, db, `UPDATE leaves SET leaf = ? WHERE idx = 7`, forged)
	mustExec(t, db, `DELETE FROM checkpoints WHERE size > 0`)
	mustExec(t, db, `DELETE FROM tiles`)
	mustExec(t, db, `DELETE FROM tile_parts`)
	rows, _ := db.Query(`SELECT leaf FROM leaves ORDER BY idx`)
	var leaves [][]byte
	for rows.Next() {
		var l []byte
		rows.Scan(&l)
		leaves = append(leaves, l)
	}
	rows.Close()
	for id, h := range tilesOf(leaves) { // a partial tile as one run (internal/store/tilerun)
		if len(h) == ledger.TileWidth*ledger.HashSize {
			mustExec(t, db, `INSERT INTO tiles(level, idx, hashes) VALUES (?, ?, ?)`, id.Level, id.Index, h)
		} else {
			mustExec(t, db, `INSERT INTO tile_parts(level, idx, pos, hashes) VALUES (?, ?, 0, ?)`, id.Level, id.Index, h)
		}
	}
	db.Close()
	if _, errOut, code := runWritIn(t, "", "ledger", "append", "--data-dir", dir); code != 0 {
		t.Fatalf("restart after the forgery: %d %s", code, errOut)
	}
	if out, errOut, code := runWritIn(t, "", "ledger", "verify", "--data-dir", dir); code != 0 {
		t.Logf("plain verify caught it anyway: %s%s", out, errOut)
	}
	out, _, code = runWritIn(t, "", "ledger", "verify", "--data-dir", dir, "--since", saved)
	if code == 0 || !strings.Contains(out, "since: the ledger does not extend the checkpoint of size 300") {
		t.Fatalf("verify --since after a rewrite: exit %d\n%s", code, out)
	}
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatal(err)
	}
}

// tilesOf recomputes the hash tiles of leaves, as a forger would.
func tilesOf(leaves [][]byte) map[ledger.TileID][]byte {
	out := map[ledger.TileID][]byte{}
	level := make([][]byte, len(leaves))
	for i, l := range leaves {
		level[i] = ledger.LeafHash(l)
	}
	for l := uint64(0); len(level) > 0; l++ {
		for i, h := range level {
			id := ledger.TileID{Level: l, Index: uint64(i) / ledger.TileWidth}
			out[id] = append(out[id], h...)
		}
		var next [][]byte
		for start := 0; start+ledger.TileWidth <= len(level); start += ledger.TileWidth {
			next = append(next, rootOf(level[start:start+ledger.TileWidth]))
		}
		level = next
	}
	return out
}

func rootOf(hs [][]byte) []byte {
	for len(hs) > 1 {
		var next [][]byte
		for i := 0; i < len(hs); i += 2 {
			next = append(next, rfc6962.DefaultHasher.HashChildren(hs[i], hs[i+1]))
		}
		hs = next
	}
	return hs[0]
}
