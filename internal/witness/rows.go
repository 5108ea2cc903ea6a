package witness

import (
	"time"

	"github.com/writhq/writ/internal/ledger"
)

// Rows is the part of a database driver's result rows that the scanners
// below need; database/sql's and pgx's both have it. The caller closes
// the rows: the two drivers' Close methods differ.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScanRows calls fn for each cosignature in rows, which select the
// columns size, key, time (unix seconds) and line of the cosignatures
// table, in that order. The stores share it.
func ScanRows(rows Rows, fn func(Cosignature) error) error {
	for rows.Next() {
		var c Cosignature
		var size, t int64
		if err := rows.Scan(&size, &c.Key, &t, &c.Line); err != nil {
			return err
		}
		c.Size, c.Time = uint64(size), time.Unix(t, 0).UTC()
		if err := fn(c); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ScanStates decodes the witness states in rows, which select the state
// column of the witness_state table.
func ScanStates(rows Rows) ([]State, error) {
	var out []State
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		st, err := DecodeState(b)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// CosignedPage is how many checkpoint sizes a store's NewestCosigned
// reads at a time, newest first: the newest usually meets the quorum.
const CosignedPage = 64

// NewestInPage reads one page of a store's NewestCosigned walk: rows of
// (size, number of cosignatures by the keys asked about), sizes below
// *below (-1: no bound) newest first, at most CosignedPage of them. When
// a size has quorum cosignatures it returns the newest such; when none
// has and the page is the last, ledger.ErrNotFound. Otherwise it sets
// *below to the page's smallest size and returns more true: the store
// reads the next page.
func NewestInPage(rows Rows, quorum int, below *int64) (size uint64, more bool, err error) {
	n, found := 0, int64(-1)
	for rows.Next() {
		var size, count int64
		if err := rows.Scan(&size, &count); err != nil {
			return 0, false, err
		}
		n++
		*below = size
		if count >= int64(quorum) && found < 0 {
			found = size
		}
	}
	switch {
	case rows.Err() != nil:
		return 0, false, rows.Err()
	case found >= 0:
		return uint64(found), false, nil
	case n < CosignedPage:
		return 0, false, ledger.ErrNotFound
	}
	return 0, true, nil
}
