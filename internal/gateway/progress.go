package gateway

import (
	"context"
	"crypto/rand"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// How long a call's answer waits for progress notifications still on
// their way from the upstream: the SDK hands writ a call's result as soon
// as it is read, and the notifications read before it a moment later.
// The answer waits until the last said the work was done (progress
// reached total), or, from an upstream that did not say how much work
// there is, until none has come for progressQuiet; never longer than
// progressDrain.
const (
	progressQuiet = 10 * time.Millisecond
	progressDrain = 100 * time.Millisecond
)

// progressParams are the parameters of requests that may ask for progress.
type progressParams interface {
	GetProgressToken() any
	SetProgressToken(any)
}

// progressRelay relays one call's progress notifications to its agent.
// What the agent is sent is writ's count of them (1, 2, 3…): the
// upstream's numbers, like its message, would be data the ledger does not
// hold, and a channel from the upstream to the agent beside the recorded
// result. The count says only that the work moves.
type progressRelay struct {
	send  func(n int)
	moved chan struct{} // a notification was relayed

	mu              sync.Mutex
	n               int
	progress, total float64
}

func (r *progressRelay) relay(p *mcp.ProgressNotificationParams) {
	r.mu.Lock()
	r.n++
	r.progress, r.total = p.Progress, p.Total
	// Sent under the lock, so that the agent's count only goes up.
	r.send(r.n)
	r.mu.Unlock()
	select {
	case r.moved <- struct{}{}:
	default:
	}
}

// finish waits, within the bounds above, for notifications still on
// their way; those that arrive later are dropped.
func (r *progressRelay) finish() {
	deadline := time.Now().Add(progressDrain)
	for {
		r.mu.Lock()
		done := r.n == 0 || (r.total > 0 && r.progress >= r.total)
		// An upstream that said how much work there is was not done yet:
		// the rest of its notifications are waited for, not a quiet spell.
		quiet := r.total <= 0
		r.mu.Unlock()
		left := time.Until(deadline)
		if done || left <= 0 {
			return
		}
		wait := left
		if quiet {
			wait = min(progressQuiet, left)
		}
		t := time.NewTimer(wait)
		select {
		case <-r.moved:
			t.Stop()
		case <-t.C:
			return
		}
	}
}

// relayProgress, when the agent asked for progress notifications on its
// request, asks the upstream for them under a token of writ's own (the
// agent's token means nothing in writ's session with the upstream, which
// other calls may share) and relays them to the agent under the agent's
// token, as writ's count of them: nothing of the upstream's (progress,
// total, message, _meta) reaches the agent this way, since the ledger
// does not hold it. The returned func ends the relay, once the
// notifications that came before the result are through.
func (c *call) relayProgress(ctx context.Context, in, fwd progressParams) func() {
	tok := in.GetProgressToken()
	ss, ok := c.req.GetSession().(*mcp.ServerSession)
	if tok == nil || !ok {
		return func() {}
	}
	ours := "writ-" + rand.Text()
	fwd.SetProgressToken(ours)
	r := &progressRelay{moved: make(chan struct{}, 1), send: func(n int) {
		// Sent in the request's context, so that the SDK puts it on the
		// request's own stream.
		if err := ss.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: float64(n)}); err != nil {
			c.g.log.DebugContext(ctx, "relaying MCP progress failed", "server", c.server, "err", err)
		}
	}}
	c.u.progress.Store(ours, r)
	return func() {
		r.finish()
		c.u.progress.Delete(ours)
	}
}

// relayProgress hands a progress notification of the upstream's to the
// call it belongs to; one for no call in flight is dropped.
func (u *upstream) relayProgress(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
	tok, _ := req.Params.ProgressToken.(string)
	if r, ok := u.progress.Load(tok); ok {
		r.(*progressRelay).relay(req.Params)
	}
}
