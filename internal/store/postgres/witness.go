package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

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
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO cosignatures (size, key, time, line) VALUES ($1, $2, $3, $4)
			ON CONFLICT (size, key) DO NOTHING`, int64(c.Size), c.Key, c.Time.Unix(), c.Line); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, putStateSQL, st.Key, string(state))
		return err
	})
}

const putStateSQL = `INSERT INTO witness_state (key, state) VALUES ($1, $2)
	ON CONFLICT (key) DO UPDATE SET state = excluded.state`

// SaveWitnessState implements witness.Store.
func (s *Store) SaveWitnessState(ctx context.Context, st witness.State) error {
	state, err := witness.EncodeState(st)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, putStateSQL, st.Key, string(state))
	return err
}

// WitnessStates implements witness.Store.
func (s *Store) WitnessStates(ctx context.Context) ([]witness.State, error) {
	rows, err := s.pool.Query(ctx, `SELECT state FROM witness_state ORDER BY key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return witness.ScanStates(rows)
}

// Cosignatures implements witness.Store.
func (s *Store) Cosignatures(ctx context.Context, size uint64) ([]witness.Cosignature, error) {
	var out []witness.Cosignature
	err := s.scanCosignatures(ctx, `WHERE size = $1`, []any{int64(size)}, func(c witness.Cosignature) error {
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
	rows, err := s.pool.Query(ctx, `SELECT size, key, time, line FROM cosignatures `+where+` ORDER BY size, key`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return witness.ScanRows(rows, fn)
}

// NewestCosigned implements witness.Store, walking the cosignatures'
// primary key backwards a page of sizes at a time.
func (s *Store) NewestCosigned(ctx context.Context, keys []string, quorum int) (uint64, error) {
	if len(keys) == 0 || quorum < 1 {
		return 0, ledger.ErrNotFound
	}
	below := int64(-1) // no upper bound yet
	for {
		rows, err := s.pool.Query(ctx, `SELECT size, count(*) FROM cosignatures
			WHERE key = ANY($1) AND ($2 < 0 OR size < $2)
			GROUP BY size ORDER BY size DESC LIMIT $3`, keys, below, witness.CosignedPage)
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
	err := s.pool.QueryRow(ctx, `SELECT note FROM checkpoints WHERE size = $1`, int64(size)).Scan(&cp.Note)
	if errors.Is(err, pgx.ErrNoRows) {
		return cp, ledger.ErrNotFound
	}
	return cp, err
}
