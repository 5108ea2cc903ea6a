package sqlite

import (
	"context"
	"time"
)

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
			var busy, logPages, done int
			err := s.r.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logPages, &done)
			if err != nil {
				continue
			}
		}
	}
}
