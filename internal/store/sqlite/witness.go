package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/witness"
)

var _ witness.Store = (*Store)(nil)

// SaveCosignature implements witness.Store.
func (s *Store) SaveCosignature(ctx context.Context, c witness.Cosignature, st witness.State) error {
	state, err := witness.EncodeState(st)
	if err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO cosignatures(size, key, time, line) VALUES (?, ?, ?, ?)`,
		int64(c.Size), c.Key, c.Time.Unix(), c.Line); err != nil {
		return err
	}
	if err := putState(ctx, tx, st.Key, state); err != nil {
		return err
	}
	return tx.Commit()
}

// SaveWitnessState implements witness.Store.
func (s *Store) SaveWitnessState(ctx context.Context, st witness.State) error {
	state, err := witness.EncodeState(st)
	if err != nil {
		return err
	}
	return putState(ctx, s.w, st.Key, state)
}

type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func putState(ctx context.Context, e execer, key string, state []byte) error {
	_, err := e.ExecContext(ctx, `INSERT INTO witness_state(key, state) VALUES (?, ?)
		ON CONFLICT(key) DO UPDATE SET state = excluded.state`, key, string(state))
	return err
}

// WitnessStates implements witness.Store.
func (s *Store) WitnessStates(ctx context.Context) ([]witness.State, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT state FROM witness_state ORDER BY key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return witness.ScanStates(rows)
}

// Cosignatures implements witness.Store.
func (s *Store) Cosignatures(ctx context.Context, size uint64) ([]witness.Cosignature, error) {
	var out []witness.Cosignature
	err := s.scanCosignatures(ctx, `WHERE size = ?`, []any{int64(size)}, func(c witness.Cosignature) error {
		out = append(out, c)
		return nil
	})
	return out, err
}

// ScanCosignatures implements witness.Store.
func (s *Store) ScanCosignatures(ctx context.Context, fn func(witness.Cosignature) error) error {
	return s.scanCosignatures(ctx, "", nil, fn)
}

func (s *Store) scanCosignatures(ctx context.Context, where string, args []any, fn func(witness.Cosignature) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT size, key, time, line FROM cosignatures `+where+` ORDER BY size, key`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return witness.ScanRows(rows, fn)
}

// NewestCosigned implements witness.Store. It walks the cosignatures'
// primary key backwards a page of sizes at a time, so the usual answer
// (the newest cosigned checkpoint) costs one short index scan however
// many cosignatures are stored.
func (s *Store) NewestCosigned(ctx context.Context, keys []string, quorum int) (uint64, error) {
	if len(keys) == 0 || quorum < 1 {
		return 0, ledger.ErrNotFound
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?,", len(keys)), ",") + ")"
	below := int64(-1) // no upper bound yet
	for {
		args := make([]any, 0, len(keys)+3)
		for _, k := range keys {
			args = append(args, k)
		}
		cond := ""
		if below >= 0 {
			cond = " AND size < ?"
			args = append(args, below)
		}
		args = append(args, witness.CosignedPage)
		rows, err := s.r.QueryContext(ctx, `SELECT size, COUNT(*) FROM cosignatures WHERE key IN `+in+cond+
			` GROUP BY size ORDER BY size DESC LIMIT ?`, args...)
		if err != nil {
			return 0, err
		}
		size, more, err := witness.NewestInPage(rows, quorum, &below)
		rows.Close()
		if !more {
			return size, err
		}
	}
}

// ReadCheckpoint implements witness.Store.
func (s *Store) ReadCheckpoint(ctx context.Context, size uint64) (ledger.StoredCheckpoint, error) {
	cp := ledger.StoredCheckpoint{Size: size}
	err := s.r.QueryRowContext(ctx, `SELECT note FROM checkpoints WHERE size = ?`, int64(size)).Scan(&cp.Note)
	if errors.Is(err, sql.ErrNoRows) {
		return cp, ledger.ErrNotFound
	}
	return cp, err
}
