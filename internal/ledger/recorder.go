package ledger

import "context"

// Recorder appends one event to the ledger; *Ledger is one. The error
// contract is Append's: nil means the event is durable, and a non-nil
// error that it is not (wrapping ErrUnavailable or ErrClosed, or a
// ValidationError for an event the ledger refuses). The parts of writ that
// record without the task service (identity's refusals, the rate limits'
// summaries, policy loads) take one.
type Recorder interface {
	Append(ctx context.Context, e Event) (uint64, error)
}

var _ Recorder = (*Ledger)(nil)
