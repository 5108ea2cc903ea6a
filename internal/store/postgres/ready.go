package postgres

import (
	"context"
	"time"

	"github.com/writhq/writ/internal/ledger"
)

var (
	_ ledger.HealthChecker = (*Store)(nil)
	_ ledger.Prober        = (*Store)(nil)
)

// readyTimeout bounds Healthy and Probe: a database that does not answer
// in time is not ready.
const readyTimeout = 2 * time.Second

// Healthy implements ledger.HealthChecker: the database answers a ping on
// a pooled connection.
func (s *Store) Healthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	return redact(s.pool.Ping(ctx))
}

// Probe implements ledger.Prober: one small committed write beside the
// log, to learn whether commits succeed again after one failed.
func (s *Store) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('ready_probe', $1)
	  ON CONFLICT (key) DO UPDATE SET value = excluded.value`, time.Now().UTC().Format(time.RFC3339Nano))
	return redact(err)
}
