package sqlite

import "context"

// RestartFrames and Checkpoint expose the checkpointer's threshold and one
// of its ticks to the tests.
const RestartFrames = restartFrames

func (s *Store) Checkpoint(ctx context.Context) error { return s.checkpoint(ctx) }
