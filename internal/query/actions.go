package query

import (
	"context"
	"fmt"
)

// ActionEvents returns the ledger indexes of the events that name action
// actionID (its action.authorized and action.completed), ascending, once
// the index has caught up (at most MaxQueryWait). The task service reads
// them for an action it no longer holds in memory.
func (ix *Index) ActionEvents(ctx context.Context, actionID string) ([]uint64, error) {
	if err := ix.fresh(ctx); err != nil {
		return nil, err
	}
	return ix.indexes(ctx, `SELECT idx FROM `+ix.t.events+` WHERE action_id = ? ORDER BY idx`, actionID)
}

// ActionEventsFresh is ActionEvents answering as of the store's size when
// it is called: it waits for the index to get there, at most
// MaxQueryWait, and fails rather than answer from less.
func (ix *Index) ActionEventsFresh(ctx context.Context, actionID string) ([]uint64, error) {
	size, err := ix.cfg.Store.Size(ctx)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, MaxQueryWait)
	defer cancel()
	if err := ix.follow.SyncTo(wctx, size); err != nil {
		return nil, fmt.Errorf("query index: catching up to %d: %w", size, err)
	}
	return ix.indexes(ctx, `SELECT idx FROM `+ix.t.events+` WHERE action_id = ? ORDER BY idx`, actionID)
}
