package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrations are applied in order; writ_schema records how many have run.
// Never edit one that has shipped: add a new one.
var migrations = []string{
	// 1: the ledger.
	`CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
	 CREATE TABLE leaves (idx bigint PRIMARY KEY, leaf bytea NOT NULL);
	 CREATE TABLE bodies (idx bigint NOT NULL, name text NOT NULL, salt bytea NOT NULL, data bytea NOT NULL,
	                      PRIMARY KEY (idx, name));
	 CREATE TABLE tiles (level integer NOT NULL, idx bigint NOT NULL, hashes bytea NOT NULL,
	                     PRIMARY KEY (level, idx));
	 CREATE TABLE checkpoints (size bigint PRIMARY KEY, note bytea NOT NULL);
	 CREATE TABLE log_head (id integer PRIMARY KEY CHECK (id = 1), size bigint NOT NULL);
	 INSERT INTO log_head (id, size) VALUES (1, 0);`,
	// 2: sequencing in fewer round trips. writ_lock_head locks the head
	// and, in a second statement (a fresh snapshot, after the lock), reads
	// the right edge's tiles when the size is not the one the writer knows.
	// writ_advance_head moves the head or aborts the transaction.
	`CREATE FUNCTION writ_lock_head(known bigint)
	   RETURNS TABLE (o_size bigint, o_level integer, o_idx bigint, o_hashes bytea)
	   LANGUAGE plpgsql VOLATILE AS $$
	 DECLARE n bigint;
	 BEGIN
	   SELECT h.size INTO n FROM log_head h WHERE h.id = 1 FOR UPDATE;
	   o_size := n;
	   RETURN NEXT;
	   IF n <> known AND n > 0 THEN
	     RETURN QUERY SELECT n, t.level, t.idx, t.hashes FROM tiles t
	       JOIN generate_series(0, 7) AS e(lv) ON t.level = e.lv AND t.idx = (n >> (8 * e.lv)) / 256
	       WHERE (n >> (8 * e.lv)) > 0;
	   END IF;
	 END $$;
	 CREATE FUNCTION writ_advance_head(start bigint, finish bigint) RETURNS void
	   LANGUAGE plpgsql VOLATILE AS $$
	 BEGIN
	   UPDATE log_head SET size = finish WHERE id = 1 AND size = start;
	   IF NOT FOUND THEN
	     RAISE EXCEPTION 'writ: the log head is not at %', start USING ERRCODE = '40001';
	   END IF;
	 END $$;`,
	// 3: the head also records the latest checkpoint's size and when it was
	// stored (the database's clock), so that replicas share one checkpoint
	// interval instead of each signing on its own.
	`ALTER TABLE log_head ADD COLUMN checkpoint_size bigint NOT NULL DEFAULT -1,
	                      ADD COLUMN checkpoint_at timestamptz NOT NULL DEFAULT now();
	 UPDATE log_head SET checkpoint_size = COALESCE((SELECT max(size) FROM checkpoints), -1);
	 DROP FUNCTION writ_lock_head(bigint);
	 DROP FUNCTION writ_advance_head(bigint, bigint);
	 CREATE FUNCTION writ_lock_head(known bigint)
	   RETURNS TABLE (o_size bigint, o_cp_size bigint, o_cp_age double precision,
	                  o_level integer, o_idx bigint, o_hashes bytea)
	   LANGUAGE plpgsql VOLATILE AS $$
	 DECLARE n bigint; cs bigint; ca timestamptz;
	 BEGIN
	   SELECT h.size, h.checkpoint_size, h.checkpoint_at INTO n, cs, ca FROM log_head h WHERE h.id = 1 FOR UPDATE;
	   o_size := n;
	   o_cp_size := cs;
	   o_cp_age := extract(epoch FROM clock_timestamp() - ca);
	   RETURN NEXT;
	   IF n <> known AND n > 0 THEN
	     RETURN QUERY SELECT n, cs, o_cp_age, t.level, t.idx, t.hashes FROM tiles t
	       JOIN generate_series(0, 7) AS e(lv) ON t.level = e.lv AND t.idx = (n >> (8 * e.lv)) / 256
	       WHERE (n >> (8 * e.lv)) > 0;
	   END IF;
	 END $$;
	 CREATE FUNCTION writ_advance_head(start bigint, finish bigint, checkpoint bigint) RETURNS void
	   LANGUAGE plpgsql VOLATILE AS $$
	 BEGIN
	   UPDATE log_head SET size = finish WHERE id = 1 AND size = start;
	   IF NOT FOUND THEN
	     RAISE EXCEPTION 'writ: the log head is not at %', start USING ERRCODE = '40001';
	   END IF;
	   IF checkpoint >= 0 THEN
	     UPDATE log_head SET checkpoint_size = GREATEST(checkpoint_size, checkpoint), checkpoint_at = clock_timestamp()
	       WHERE id = 1;
	   END IF;
	 END $$;`,
	// 4: DPoP proofs accepted by any replica, so that one replayed to
	// another replica is refused too (ClaimProof).
	`CREATE TABLE dpop_proofs (key bytea PRIMARY KEY, until timestamptz NOT NULL);
	 CREATE INDEX dpop_proofs_until ON dpop_proofs (until);`,
	// 5: witness cosignatures beside their checkpoints, and what writ knows
	// of each witness (witness.go). time is the witness's timestamp, in
	// unix seconds; state is JSON (witness.EncodeState).
	`CREATE TABLE cosignatures (size bigint NOT NULL, key text NOT NULL, time bigint NOT NULL, line text NOT NULL,
	                            PRIMARY KEY (size, key));
	 CREATE TABLE witness_state (key text PRIMARY KEY, state text NOT NULL);`,
	// 6: named cursors of the log's consumers (cursors.go): the index of
	// the first entry each has not applied.
	`CREATE TABLE cursors (name text PRIMARY KEY, next bigint NOT NULL);`,
	// 7: the head's lock also returns the leaves other writers appended
	// since the size the writer knows (up to 4096 of them), whose tasks
	// its task chains need, in the same round trip. The columns before
	// are unchanged, so a writer that names only those still works.
	`DROP FUNCTION writ_lock_head(bigint);
	 CREATE FUNCTION writ_lock_head(known bigint)
	   RETURNS TABLE (o_size bigint, o_cp_size bigint, o_cp_age double precision,
	                  o_level integer, o_idx bigint, o_hashes bytea, o_leaf_idx bigint, o_leaf bytea)
	   LANGUAGE plpgsql VOLATILE AS $$
	 DECLARE n bigint; cs bigint; ca timestamptz;
	 BEGIN
	   SELECT h.size, h.checkpoint_size, h.checkpoint_at INTO n, cs, ca FROM log_head h WHERE h.id = 1 FOR UPDATE;
	   o_size := n;
	   o_cp_size := cs;
	   o_cp_age := extract(epoch FROM clock_timestamp() - ca);
	   RETURN NEXT;
	   IF n <> known AND n > 0 THEN
	     RETURN QUERY SELECT n, cs, o_cp_age, t.level, t.idx, t.hashes, NULL::bigint, NULL::bytea FROM tiles t
	       JOIN generate_series(0, 7) AS e(lv) ON t.level = e.lv AND t.idx = (n >> (8 * e.lv)) / 256
	       WHERE (n >> (8 * e.lv)) > 0;
	   END IF;
	   IF known >= 0 AND known < n AND n - known <= 4096 THEN
	     RETURN QUERY SELECT n, cs, o_cp_age, NULL::integer, NULL::bigint, NULL::bytea, l.idx, l.leaf FROM leaves l
	       WHERE l.idx >= known AND l.idx < n ORDER BY l.idx;
	   END IF;
	 END $$;`,
	// 8: each body row names how its data is kept (internal/store/bodyenc):
	// 0 as it is, as every row before this migration.
	`ALTER TABLE bodies ADD COLUMN enc smallint NOT NULL DEFAULT 0;`,
	// 9: a batch stamped before its writer held the lock (ahead.go).
	// writ_commit_head takes the head's lock and checks that the head is
	// still where the writer stamped it (size and checkpoint size). With
	// an interval (cp_interval, seconds; NULL: none), the checkpoint's
	// age under the lock decides, as it does for a writer under the lock:
	// at least the interval, the batch's checkpoint is stored and a batch
	// without one refused; less, its checkpoint is left out. Without one,
	// a checkpoint the batch carries is stored. A refusal aborts the
	// transaction with SQLSTATE WR001 (the head moved) or WR002 (a
	// checkpoint is due and the batch has none). Then it advances the head as
	// writ_advance_head does, and returns the age it compared and whether
	// it stored the checkpoint.
	`CREATE FUNCTION writ_commit_head(start bigint, finish bigint, checkpoint bigint, note bytea,
	                                  cp_size bigint, cp_interval double precision,
	                                  OUT o_age double precision, OUT o_stored boolean)
	   LANGUAGE plpgsql VOLATILE AS $$
	 DECLARE n bigint; cs bigint; ca timestamptz; due boolean;
	 BEGIN
	   SELECT h.size, h.checkpoint_size, h.checkpoint_at INTO n, cs, ca FROM log_head h WHERE h.id = 1 FOR UPDATE;
	   o_age := extract(epoch FROM clock_timestamp() - ca);
	   due := cp_interval IS NULL OR o_age >= cp_interval;
	   IF n <> start OR cs <> cp_size THEN
	     RAISE EXCEPTION 'writ: the log head is not where the batch was stamped (%)', start USING ERRCODE = 'WR001';
	   END IF;
	   IF cp_interval IS NOT NULL AND due AND checkpoint < 0 THEN
	     RAISE EXCEPTION 'writ: a checkpoint is due and the batch has none' USING ERRCODE = 'WR002';
	   END IF;
	   o_stored := due AND checkpoint >= 0;
	   IF o_stored THEN
	     INSERT INTO checkpoints (size, note) VALUES (checkpoint, note) ON CONFLICT (size) DO NOTHING;
	     UPDATE log_head SET size = finish, checkpoint_size = GREATEST(checkpoint_size, checkpoint), checkpoint_at = clock_timestamp()
	       WHERE id = 1;
	   ELSE
	     UPDATE log_head SET size = finish WHERE id = 1;
	   END IF;
	 END $$;`,
	// 10: each leaf row names how its leaf is kept (internal/store/leafenc):
	// 0 as it is, as every row before this migration. The head's lock
	// returns the encoding beside each leaf it returns; the columns before
	// are unchanged.
	`ALTER TABLE leaves ADD COLUMN enc smallint NOT NULL DEFAULT 0;
	 DROP FUNCTION writ_lock_head(bigint);
	 CREATE FUNCTION writ_lock_head(known bigint)
	   RETURNS TABLE (o_size bigint, o_cp_size bigint, o_cp_age double precision,
	                  o_level integer, o_idx bigint, o_hashes bytea, o_leaf_idx bigint, o_leaf bytea,
	                  o_leaf_enc smallint)
	   LANGUAGE plpgsql VOLATILE AS $$
	 DECLARE n bigint; cs bigint; ca timestamptz;
	 BEGIN
	   SELECT h.size, h.checkpoint_size, h.checkpoint_at INTO n, cs, ca FROM log_head h WHERE h.id = 1 FOR UPDATE;
	   o_size := n;
	   o_cp_size := cs;
	   o_cp_age := extract(epoch FROM clock_timestamp() - ca);
	   RETURN NEXT;
	   IF n <> known AND n > 0 THEN
	     RETURN QUERY SELECT n, cs, o_cp_age, t.level, t.idx, t.hashes, NULL::bigint, NULL::bytea, NULL::smallint FROM tiles t
	       JOIN generate_series(0, 7) AS e(lv) ON t.level = e.lv AND t.idx = (n >> (8 * e.lv)) / 256
	       WHERE (n >> (8 * e.lv)) > 0;
	   END IF;
	   IF known >= 0 AND known < n AND n - known <= 4096 THEN
	     RETURN QUERY SELECT n, cs, o_cp_age, NULL::integer, NULL::bigint, NULL::bytea, l.idx, l.leaf, l.enc FROM leaves l
	       WHERE l.idx >= known AND l.idx < n ORDER BY l.idx;
	   END IF;
	 END $$;`,
	// 11: a tile not yet full is kept as the runs of hashes each commit
	// added to it (tile_parts, by the position of the run's first hash),
	// rather than rewritten whole at every commit; tiles holds full tiles
	// only (tiles.go). The head's lock returns each edge tile assembled;
	// its columns are unchanged.
	`CREATE TABLE tile_parts (level integer NOT NULL, idx bigint NOT NULL, pos integer NOT NULL, hashes bytea NOT NULL,
	                          PRIMARY KEY (level, idx, pos));
	 INSERT INTO tile_parts (level, idx, pos, hashes) SELECT level, idx, 0, hashes FROM tiles WHERE length(hashes) < 8192;
	 DELETE FROM tiles WHERE length(hashes) < 8192;
	 CREATE OR REPLACE FUNCTION writ_lock_head(known bigint)
	   RETURNS TABLE (o_size bigint, o_cp_size bigint, o_cp_age double precision,
	                  o_level integer, o_idx bigint, o_hashes bytea, o_leaf_idx bigint, o_leaf bytea,
	                  o_leaf_enc smallint)
	   LANGUAGE plpgsql VOLATILE AS $$
	 DECLARE n bigint; cs bigint; ca timestamptz;
	 BEGIN
	   SELECT h.size, h.checkpoint_size, h.checkpoint_at INTO n, cs, ca FROM log_head h WHERE h.id = 1 FOR UPDATE;
	   o_size := n;
	   o_cp_size := cs;
	   o_cp_age := extract(epoch FROM clock_timestamp() - ca);
	   RETURN NEXT;
	   IF n <> known AND n > 0 THEN
	     RETURN QUERY SELECT n, cs, o_cp_age, e.lv, (n >> (8 * e.lv)) / 256, COALESCE(t.hashes, p.hashes),
	                         NULL::bigint, NULL::bytea, NULL::smallint
	       FROM generate_series(0, 7) AS e(lv)
	       LEFT JOIN tiles t ON t.level = e.lv AND t.idx = (n >> (8 * e.lv)) / 256
	       LEFT JOIN LATERAL (SELECT string_agg(q.hashes, ''::bytea ORDER BY q.pos) AS hashes FROM tile_parts q
	                          WHERE q.level = e.lv AND q.idx = (n >> (8 * e.lv)) / 256) p ON true
	       WHERE (n >> (8 * e.lv)) > 0 AND COALESCE(t.hashes, p.hashes) IS NOT NULL;
	   END IF;
	   IF known >= 0 AND known < n AND n - known <= 4096 THEN
	     RETURN QUERY SELECT n, cs, o_cp_age, NULL::integer, NULL::bigint, NULL::bytea, l.idx, l.leaf, l.enc FROM leaves l
	       WHERE l.idx >= known AND l.idx < n ORDER BY l.idx;
	   END IF;
	 END $$;`,
}

// migrate brings the schema up to date. It runs in one transaction under an
// advisory lock, so replicas starting at once apply each migration once.
func migrate(ctx context.Context, conn *pgx.Conn, lockKey int64) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS writ_schema (version integer NOT NULL)`); err != nil {
		return err
	}
	var v int
	err = tx.QueryRow(ctx, `SELECT version FROM writ_schema`).Scan(&v)
	switch {
	case err == pgx.ErrNoRows:
		if _, err := tx.Exec(ctx, `INSERT INTO writ_schema (version) VALUES (0)`); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this writ understands (%d); upgrade writ", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.Exec(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE writ_schema SET version = $1`, len(migrations)); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
