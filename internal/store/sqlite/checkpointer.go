package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// restartFrames is the size of the write-ahead log, in frames (pages),
// beyond which the checkpointer lets the log start over.
//
// A commit's cost is mostly its fsync, and an fsync of a file that grew
// costs more than one of a file overwritten in place: the file system must
// also make the new size and blocks durable (on ext4, about 0.28 ms against
// 0.09 ms). SQLite writes the log from its start again only when a commit
// begins with every frame copied back into the database, which under steady
// appends never happens by itself: the background checkpoint below runs
// beside commits and is always a few frames behind. So, past this size, the
// checkpointer copies those last frames on the write connection, between two
// commits, and the next commit starts the log over at its beginning, writing
// over blocks the file already has. Commits wait for that copy (1-2 ms
// under load, two fsyncs), so it should be rare: 4096 frames is 16 MiB, a
// few seconds of the heaviest load.
const restartFrames = 4096

// journalSizeLimit is the size, in bytes, SQLite truncates the log back to
// when it starts over, after a burst grew it.
const journalSizeLimit = 64 << 20

// checkpointer copies the write-ahead log back into the database file in the
// background. SQLite would otherwise do it inside whichever commit crosses
// the threshold, stalling that commit (and every append waiting on it) for a
// full copy and two fsyncs. A PASSIVE checkpoint never blocks writers.
func (s *Store) checkpointer() {
	defer close(s.checkpointerDone)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stopCheckpointer:
			// A final full checkpoint leaves a small WAL behind.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			s.r.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
			cancel()
			return
		case <-t.C:
			// One that fails (the database busy, say) is tried again at
			// the next tick; commits never depend on it.
			s.checkpoint(context.Background())
		}
	}
}

// checkpoint copies the log into the database beside commits and, once the
// log is longer than restartFrames, copies the rest between two commits so
// that the next one starts it over.
func (s *Store) checkpoint(ctx context.Context) error {
	// passive runs a PASSIVE checkpoint through db and returns the log's
	// length in frames (-1 when another connection was checkpointing).
	passive := func(db *sql.DB) (int, error) {
		var busy, logFrames, copied int
		err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &copied)
		return logFrames, err
	}
	if n, err := passive(s.r); err != nil || n < restartFrames {
		return err
	}
	// Once more beside commits: what the write connection copies, with
	// commits waiting, is then only what arrived during this pass.
	if _, err := passive(s.r); err != nil {
		return err
	}
	// The write handle has one connection: while this holds it, no commit
	// adds frames, so the checkpoint can copy every one (unless a reader's
	// snapshot still needs the older pages; the next tick tries again).
	_, err := passive(s.w)
	return err
}
