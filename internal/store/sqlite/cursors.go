package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/writhq/writ/internal/ledger"
)

var _ ledger.Cursors = (*Store)(nil)

// Cursor implements ledger.Cursors.
func (s *Store) Cursor(ctx context.Context, name string) (uint64, error) {
	if err := ledger.CheckCursorName(name); err != nil {
		return 0, err
	}
	var next int64
	err := s.r.QueryRowContext(ctx, `SELECT next FROM cursors WHERE name = ?`, name).Scan(&next)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return uint64(next), err
}

// SetCursor implements ledger.Cursors: the row keeps the larger of its
// value and next. The write is a transaction of its own on the write
// connection, as durable as a commit.
func (s *Store) SetCursor(ctx context.Context, name string, next uint64) error {
	if err := ledger.CheckCursorName(name); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO cursors(name, next) VALUES (?, ?)
		ON CONFLICT(name) DO UPDATE SET next = max(cursors.next, excluded.next)`, name, int64(next))
	return err
}
