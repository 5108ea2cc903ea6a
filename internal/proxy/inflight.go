package proxy

import (
	"context"
	"errors"
	"sync"

	"github.com/writhq/writ/internal/task"
)

// Why writ cut a call short: the cause of its context.
var (
	errTaskEnded   = errors.New("the task ended while the call was in flight")
	errCredRevoked = errors.New("the credential was revoked while the call was in flight")
)

// inflight holds the calls being forwarded, so that the end of their task
// or the revocation of their credential cancels them.
type inflight struct {
	mu    sync.Mutex
	calls map[*call]struct{}
}

type call struct {
	taskID, jti string
	cancel      context.CancelCauseFunc
}

// begin registers a call made with cred. The context it returns is
// cancelled, with errTaskEnded or errCredRevoked as its cause, when the
// task ends or the credential is revoked; done unregisters the call.
// Begun before the decision, a call cannot miss an ending that the
// decision did not see.
func (f *inflight) begin(ctx context.Context, cred task.VerifiedCredential) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	c := &call{taskID: cred.TaskID, jti: cred.JTI, cancel: cancel}
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[*call]struct{}{}
	}
	f.calls[c] = struct{}{}
	f.mu.Unlock()
	return ctx, func() {
		f.mu.Lock()
		delete(f.calls, c)
		f.mu.Unlock()
		cancel(nil)
	}
}

// end cancels the calls match selects, with cause.
func (f *inflight) end(match func(*call) bool, cause error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.calls {
		if match(c) {
			c.cancel(cause)
		}
	}
}

// stopped returns why writ cut the call of ctx short, or nil.
func stopped(ctx context.Context) error {
	if err := context.Cause(ctx); errors.Is(err, errTaskEnded) || errors.Is(err, errCredRevoked) {
		return err
	}
	return nil
}

// TaskEnded cancels the calls in flight under a task that has ended
// (completed, expired or revoked): their upstream requests are cancelled,
// nothing more of their responses reaches the agent, and they are recorded
// as cancelled. It does not block.
func (p *Proxy) TaskEnded(taskID string) {
	p.calls.end(func(c *call) bool { return c.taskID == taskID }, errTaskEnded)
}

// CredentialRevoked cancels the calls in flight made with a credential
// that was revoked, as TaskEnded does. It does not block.
func (p *Proxy) CredentialRevoked(jti string) {
	p.calls.end(func(c *call) bool { return c.jti == jti }, errCredRevoked)
}
