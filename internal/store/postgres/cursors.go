package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/writhq/writ/internal/ledger"
)

var _ ledger.Cursors = (*Store)(nil)

// Cursor implements ledger.Cursors.
func (s *Store) Cursor(ctx context.Context, name string) (uint64, error) {
	if err := ledger.CheckCursorName(name); err != nil {
		return 0, err
	}
	var next int64
	err := s.pool.QueryRow(ctx, `SELECT next FROM cursors WHERE name = $1`, name).Scan(&next)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return uint64(next), err
}

// SetCursor implements ledger.Cursors: the row keeps the larger of its
// value and next, in one statement, so concurrent writers cannot undo each
// other's progress.
func (s *Store) SetCursor(ctx context.Context, name string, next uint64) error {
	if err := ledger.CheckCursorName(name); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO cursors (name, next) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET next = GREATEST(cursors.next, excluded.next)`, name, int64(next))
	return err
}
