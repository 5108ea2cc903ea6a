package task

import (
	"errors"
	"fmt"
)

// Error kinds. Every error the Service returns for a request wraps one of
// these (or ledger.ErrUnavailable / ledger.ErrClosed), so the HTTP layer can
// choose a status in one place.
var (
	// ErrInvalid: the request is malformed or out of bounds.
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound: no such task, approval or action.
	ErrNotFound = errors.New("not found")
	// ErrForbidden: the caller may not do this (self-approval, not the
	// task's requester, another task's credential).
	ErrForbidden = errors.New("forbidden")
	// ErrConflict: the task or approval is not in a state that allows this.
	ErrConflict = errors.New("conflict")
	// ErrIncoherent: an event does not follow from the events before it:
	// the ledger holds something writ would not write. State.Replay skips
	// such an event (Skipped) rather than stopping on it.
	ErrIncoherent = errors.New("incoherent event")
)

// Error is a refused request: Kind is one of the sentinels above, Code a
// short machine-readable reason ("self_approval", "task_not_pending") and
// Detail a sentence for humans. Details never carry secrets.
type Error struct {
	Kind   error
	Code   string
	Detail string
}

func (e *Error) Error() string { return e.Detail }

// Unwrap returns the kind, so errors.Is(err, ErrForbidden) works.
func (e *Error) Unwrap() error { return e.Kind }

func newErr(kind error, code, format string, a ...any) *Error {
	return &Error{Kind: kind, Code: code, Detail: fmt.Sprintf(format, a...)}
}

func invalid(format string, a ...any) *Error {
	return newErr(ErrInvalid, "invalid_request", format, a...)
}

func notFound(format string, a ...any) *Error {
	return newErr(ErrNotFound, "not_found", format, a...)
}

func incoherent(index uint64, format string, a ...any) error {
	return fmt.Errorf("%w at ledger index %d: %s", ErrIncoherent, index, fmt.Sprintf(format, a...))
}
