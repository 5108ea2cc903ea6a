package query

import "context"

// ActionEvents returns the ledger indexes of the events that name action
// actionID (its action.authorized and action.completed), ascending, once
// the index has caught up (at most MaxQueryWait). The task service reads
// them for an action it no longer holds in memory.
func (ix *Index) ActionEvents(ctx context.Context, actionID string) ([]uint64, error) {
	return ix.actionEvents(ctx, actionID, false)
}

// ActionEventsFresh is ActionEvents answering as of the store's size when
// it is called: it waits for the index to get there, at most
// MaxQueryWait, and fails rather than answer from less.
func (ix *Index) ActionEventsFresh(ctx context.Context, actionID string) ([]uint64, error) {
	return ix.actionEvents(ctx, actionID, true)
}

func (ix *Index) actionEvents(ctx context.Context, actionID string, strict bool) ([]uint64, error) {
	if err := ix.catchUpTo(ctx, strict); err != nil {
		return nil, err
	}
	return ix.indexes(ctx, `SELECT idx FROM `+ix.t.events+` WHERE action_id = ? ORDER BY idx`, actionID)
}
