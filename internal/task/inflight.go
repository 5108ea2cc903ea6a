package task

import (
	"context"
	"errors"
	"sync"
)

// Why an enforcement point cut a call short: the cause of the call's
// context, once InFlight has cancelled it.
var (
	ErrTaskEndedInFlight         = errors.New("the task ended while the call was in flight")
	ErrCredentialRevokedInFlight = errors.New("the credential was revoked while the call was in flight")
)

// InFlight holds the calls an enforcement point (the MCP gateway, the HTTP
// proxy) is forwarding, by task, so that the end of their task or the
// revocation of their credential cancels them. The zero value is ready;
// it is safe for concurrent use.
type InFlight struct {
	mu     sync.Mutex
	byTask map[string]map[*inflightCall]bool
}

type inflightCall struct {
	jti    string
	cancel context.CancelCauseFunc
}

// Begin registers a call made with cred. The context it returns is
// cancelled, with ErrTaskEndedInFlight or ErrCredentialRevokedInFlight as
// its cause, when the task ends or the credential is revoked; done
// unregisters the call. Begun before the decision, a call cannot miss an
// ending that the decision did not see.
func (f *InFlight) Begin(ctx context.Context, cred VerifiedCredential) (_ context.Context, done func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	c := &inflightCall{jti: cred.JTI, cancel: cancel}
	f.mu.Lock()
	if f.byTask == nil {
		f.byTask = map[string]map[*inflightCall]bool{}
	}
	if f.byTask[cred.TaskID] == nil {
		f.byTask[cred.TaskID] = map[*inflightCall]bool{}
	}
	f.byTask[cred.TaskID][c] = true
	f.mu.Unlock()
	return ctx, func() {
		f.mu.Lock()
		delete(f.byTask[cred.TaskID], c)
		if len(f.byTask[cred.TaskID]) == 0 {
			delete(f.byTask, cred.TaskID)
		}
		f.mu.Unlock()
		cancel(nil)
	}
}

// EndTask cancels every call of the task. It does not block.
func (f *InFlight) EndTask(taskID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.byTask[taskID] {
		c.cancel(ErrTaskEndedInFlight)
	}
}

// Revoke cancels every call made with the credential jti. It does not
// block.
func (f *InFlight) Revoke(jti string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, calls := range f.byTask {
		for c := range calls {
			if c.jti == jti {
				c.cancel(ErrCredentialRevokedInFlight)
			}
		}
	}
}

// CutShort returns why InFlight cancelled the call of ctx, or nil.
func CutShort(ctx context.Context) error {
	if err := context.Cause(ctx); errors.Is(err, ErrTaskEndedInFlight) || errors.Is(err, ErrCredentialRevokedInFlight) {
		return err
	}
	return nil
}
