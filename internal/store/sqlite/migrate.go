package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order; the database's user_version records how
// many have run. Never edit one that has shipped: add a new one.
var migrations = []string{
	// 1: the ledger.
	`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
	 CREATE TABLE leaves (idx INTEGER PRIMARY KEY, leaf BLOB NOT NULL);
	 CREATE TABLE bodies (idx INTEGER NOT NULL, name TEXT NOT NULL, salt BLOB NOT NULL, data BLOB NOT NULL,
	                      PRIMARY KEY (idx, name)) WITHOUT ROWID;
	 CREATE TABLE tiles (level INTEGER NOT NULL, idx INTEGER NOT NULL, hashes BLOB NOT NULL,
	                     PRIMARY KEY (level, idx)) WITHOUT ROWID;
	 CREATE TABLE checkpoints (size INTEGER PRIMARY KEY, note BLOB NOT NULL);`,
	// 2: bodies move to a rowid table. In a WITHOUT ROWID table a row longer
	// than about a quarter of a page spills to an overflow page of its own,
	// so each recorded policy input (about a kilobyte) cost a page write.
	`CREATE TABLE bodies_v2 (idx INTEGER NOT NULL, name TEXT NOT NULL, salt BLOB NOT NULL, data BLOB NOT NULL,
	                         PRIMARY KEY (idx, name));
	 INSERT INTO bodies_v2 (idx, name, salt, data) SELECT idx, name, salt, data FROM bodies ORDER BY idx, name;
	 DROP TABLE bodies;
	 ALTER TABLE bodies_v2 RENAME TO bodies;`,
	// 3: DPoP proofs accepted (proofs.go), so that one replayed after a
	// restart is refused. until is in unix nanoseconds.
	`CREATE TABLE dpop_proofs (key BLOB PRIMARY KEY, until INTEGER NOT NULL) WITHOUT ROWID;
	 CREATE INDEX dpop_proofs_until ON dpop_proofs (until);`,
	// 4: witness cosignatures beside their checkpoints, and what writ knows
	// of each witness (witness.go). time is the witness's timestamp, in
	// unix seconds; state is JSON (witness.EncodeState).
	`CREATE TABLE cosignatures (size INTEGER NOT NULL, key TEXT NOT NULL, time INTEGER NOT NULL, line TEXT NOT NULL,
	                            PRIMARY KEY (size, key)) WITHOUT ROWID;
	 CREATE TABLE witness_state (key TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID;`,
	// 5: named cursors of the log's consumers (cursors.go): the index of
	// the first entry each has not applied.
	`CREATE TABLE cursors (name TEXT PRIMARY KEY, next INTEGER NOT NULL) WITHOUT ROWID;`,
	// 6: each body row names how its data is kept (internal/store/bodyenc):
	// 0 as it is, as every row before this migration.
	`ALTER TABLE bodies ADD COLUMN enc INTEGER NOT NULL DEFAULT 0;`,
	// 7: each leaf row names how its leaf is kept (internal/store/leafenc):
	// 0 as it is, as every row before this migration.
	`ALTER TABLE leaves ADD COLUMN enc INTEGER NOT NULL DEFAULT 0;`,
	// 8: a tile not yet full is kept as the runs of hashes each commit
	// added to it (internal/store/tilerun), by the position of the run's
	// first hash; tiles holds full tiles only. Rewriting the partial tile
	// whole, an overflow chain of up to three pages, was most of the pages
	// a small commit wrote.
	`CREATE TABLE tile_parts (level INTEGER NOT NULL, idx INTEGER NOT NULL, pos INTEGER NOT NULL, hashes BLOB NOT NULL,
	                          PRIMARY KEY (level, idx, pos)) WITHOUT ROWID;
	 INSERT INTO tile_parts (level, idx, pos, hashes) SELECT level, idx, 0, hashes FROM tiles WHERE length(hashes) < 8192;
	 DELETE FROM tiles WHERE length(hashes) < 8192;`,
}

func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this writ understands (%d); upgrade writ", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations))); err != nil {
		return err
	}
	return tx.Commit()
}
