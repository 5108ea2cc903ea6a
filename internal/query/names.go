package query

import (
	"context"
	"database/sql"
	"errors"
)

// maxCachedNames bounds the names cache: task and credential IDs are new
// with every task, so the cache is emptied when it is full rather than
// kept growing. A miss costs a lookup in the names table.
const maxCachedNames = 1 << 16

// batchNames are the names one index transaction looked up or added. They
// join the cache only once the transaction commits: a name added by a
// transaction that rolls back has no row.
type batchNames map[string]int64

// nameID returns the number of s in the names table, adding it there (in
// tx) if it is new. The empty string is 0 and has no row.
func (ix *Index) nameID(ctx context.Context, tx *sql.Tx, s string, batch batchNames) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if id, ok := batch[s]; ok {
		return id, nil
	}
	ix.namesMu.Lock()
	id, ok := ix.names[s]
	ix.namesMu.Unlock()
	if ok {
		return id, nil
	}
	err := tx.QueryRowContext(ctx, ix.q(`SELECT id FROM `+ix.t.names+` WHERE value = ?`), s).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		// Under the index's lock (begin): no other tailer adds names
		// meanwhile.
		err = tx.QueryRowContext(ctx, ix.q(`INSERT INTO `+ix.t.names+` (value) VALUES (?) RETURNING id`), s).Scan(&id)
	}
	if err != nil {
		return 0, err
	}
	batch[s] = id
	return id, nil
}

// keepNames adds a committed transaction's names to the cache.
func (ix *Index) keepNames(batch batchNames) {
	ix.namesMu.Lock()
	defer ix.namesMu.Unlock()
	if len(ix.names)+len(batch) > maxCachedNames {
		clear(ix.names)
	}
	for s, id := range batch {
		ix.names[s] = id
	}
}

// forgetNames empties the cache (the names table is dropped).
func (ix *Index) forgetNames() {
	ix.namesMu.Lock()
	clear(ix.names)
	ix.namesMu.Unlock()
}

// nameOf is the SQL for the number of the name given by the next
// placeholder: NULL, which equals nothing, when there is no such name.
func (ix *Index) nameOf() string {
	return `(SELECT id FROM ` + ix.t.names + ` WHERE value = ?)`
}

// named adds a condition that column col (a name's number) is value v, or
// matches it when v holds '*' wildcards. An empty v adds nothing.
func (ix *Index) named(w *where, col, v string) {
	if v == "" {
		return
	}
	if hasWildcard(v) {
		w.add(col+` IN (SELECT id FROM `+ix.t.names+` WHERE value LIKE ? ESCAPE '\')`, likePattern(v))
		return
	}
	w.add(col+` = `+ix.nameOf(), v)
}
