package task

import (
	"errors"
	"fmt"

	"github.com/writhq/writ/internal/credential"
	"github.com/writhq/writ/internal/refusal"
)

// Error kinds. Every refusal the Service returns is a *refusal.Error
// wrapping one of these (other errors wrap ledger.ErrUnavailable or
// ledger.ErrClosed, or are internal), so callers match with errors.Is and
// the HTTP edge chooses a status from the refusal's Kind.
var (
	// ErrInvalid: the request is malformed or out of bounds.
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound: no such task, approval or action.
	ErrNotFound = errors.New("not found")
	// ErrForbidden: the caller may not do this (self-approval, not the
	// task's requester, another task's credential). A credential that may
	// no longer act (its task ended, it was revoked) is refused with it
	// too, as refusal.Unauthenticated: a token problem to the caller.
	ErrForbidden = errors.New("forbidden")
	// ErrConflict: the task or approval is not in a state that allows this.
	ErrConflict = errors.New("conflict")
	// ErrIncoherent: an event does not follow from the events before it:
	// the ledger holds something writ would not write. State.Replay skips
	// such an event (Skipped) rather than stopping on it.
	ErrIncoherent = errors.New("incoherent event")
)

// kindOf is the refusal kind of each sentinel above.
func kindOf(sentinel error) refusal.Kind {
	switch sentinel {
	case ErrInvalid:
		return refusal.Invalid
	case ErrNotFound:
		return refusal.NotFound
	case ErrForbidden:
		return refusal.Forbidden
	case ErrConflict:
		return refusal.Conflict
	}
	return refusal.Internal
}

// newErr is a refusal: kind one of the sentinels above, code a short
// machine-readable reason ("self_approval", "task_not_pending"), and a
// detail for humans that never carries a secret.
func newErr(kind error, code, format string, a ...any) *refusal.Error {
	return refusal.New(kindOf(kind), kind, code, format, a...)
}

// credentialRefusal refuses a credential that verified but may not act
// (now): to the caller it is a token that is no longer good (401
// invalid_token); errors.Is matches ErrForbidden.
func credentialRefusal(code, format string, a ...any) *refusal.Error {
	e := refusal.New(refusal.Unauthenticated, ErrForbidden, code, format, a...)
	e.OAuth = credential.CodeInvalidToken
	return e
}

func invalid(format string, a ...any) *refusal.Error {
	return newErr(ErrInvalid, "invalid_request", format, a...)
}

func notFound(format string, a ...any) *refusal.Error {
	return newErr(ErrNotFound, "not_found", format, a...)
}

func incoherent(index uint64, format string, a ...any) error {
	return fmt.Errorf("%w at ledger index %d: %s", ErrIncoherent, index, fmt.Sprintf(format, a...))
}

// detailOf is the caller-safe text of a refusal, for recording it.
func detailOf(err error) string {
	if e, ok := refusal.As(err); ok {
		return e.Detail
	}
	return err.Error()
}
