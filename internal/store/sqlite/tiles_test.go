package sqlite_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/storetest"
)

// downgradeTiles puts the tiles back as schema 7 kept them: each partial
// tile whole in tiles, and no tile_parts.
func downgradeTiles(t *testing.T, db *sql.DB) {
	t.Helper()
	rows, err := db.Query(`SELECT level, idx, hashes FROM tile_parts ORDER BY level, idx, pos`)
	if err != nil {
		t.Fatal(err)
	}
	whole := map[ledger.TileID][]byte{}
	for rows.Next() {
		var id ledger.TileID
		var h []byte
		if err := rows.Scan(&id.Level, &id.Index, &h); err != nil {
			t.Fatal(err)
		}
		whole[id] = append(whole[id], h...)
	}
	rows.Close()
	for id, h := range whole {
		if _, err := db.Exec(`INSERT INTO tiles (level, idx, hashes) VALUES (?, ?, ?)`, id.Level, id.Index, h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`DROP TABLE tile_parts`); err != nil {
		t.Fatal(err)
	}
}

// TestTilesKeptInParts: full tiles are rows of their own and a partial
// tile the runs of hashes its commits added; a log whose partial tiles
// were kept whole (schema 7) is moved to runs by the migration and grows
// from there; a run missing from a partial tile is an error when it is
// read, never a shorter tile.
func TestTilesKeptInParts(t *testing.T) {
	ctx := context.Background()
	path, s, kp := appendCalls(t, 600) // two full level-0 tiles, a partial one, a partial level-1 tile
	s.Close()
	db := openRaw(t, path)
	defer db.Close()
	layout := func() {
		t.Helper()
		var partial, runs int
		if err := db.QueryRow(`SELECT count(*) FROM tiles WHERE length(hashes) <> 8192`).Scan(&partial); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`SELECT count(*) FROM tile_parts`).Scan(&runs); err != nil {
			t.Fatal(err)
		}
		if partial != 0 || runs == 0 {
			t.Errorf("%d partial tiles in tiles, %d runs in tile_parts", partial, runs)
		}
	}
	layout()

	downgradeTiles(t, db)
	if _, err := db.Exec(`PRAGMA user_version = 7`); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path) // migrates
	l, err := ledger.New(ctx, ledger.Config{Store: s, Signer: kp})
	if err != nil {
		t.Fatal(err)
	}
	for i := 600; i < 900; i++ {
		if _, err := l.Append(ctx, storetest.CallEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	layout()
	storetest.Verify(t, s, kp)

	edge := ledger.TileID{Level: 0, Index: 900 / ledger.TileWidth}
	if b, err := s.ReadTile(ctx, edge); err != nil || len(b) != 900%ledger.TileWidth*ledger.HashSize {
		t.Fatalf("edge tile: %d bytes, %v", len(b), err)
	}
	res, err := db.Exec(`DELETE FROM tile_parts WHERE level = 0 AND idx = ?1
	  AND pos = (SELECT min(pos) FROM tile_parts WHERE level = 0 AND idx = ?1 AND pos > 0)`, edge.Index)
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("taking a run out: %d, %v", n, err)
	}
	if b, err := s.ReadTile(ctx, edge); err == nil {
		t.Errorf("a tile with a run missing read as %d bytes", len(b))
	}
}
