package query

import "context"

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
