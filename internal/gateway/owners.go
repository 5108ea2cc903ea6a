package gateway

import (
	"sync"
	"time"
)

// owners remembers which task opened each agent session (2025-11-25), so
// that a request on a session with another task's credential is refused,
// and recorded, before it reaches the MCP SDK (which refuses it too).
type owners struct {
	mu    sync.Mutex
	m     map[ownerKey]owner
	swept time.Time
}

type ownerKey struct{ server, session string }

type owner struct {
	task string
	seen time.Time
}

// of returns the task that opened the session, if it is known, and notes
// that the session is in use.
func (o *owners) of(server, session string, now time.Time) (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := ownerKey{server, session}
	ow, ok := o.m[k]
	if ok {
		ow.seen = now
		o.m[k] = ow
	}
	return ow.task, ok
}

// opened records the task that opened a session. Sessions unused for
// longer than the SDK keeps them are forgotten.
func (o *owners) opened(server, session, task string, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[ownerKey]owner{}
	}
	o.m[ownerKey{server, session}] = owner{task: task, seen: now}
	if now.Sub(o.swept) < time.Minute {
		return
	}
	o.swept = now
	for k, ow := range o.m {
		if now.Sub(ow.seen) > SessionIdleTimeout {
			delete(o.m, k)
		}
	}
}

// closed forgets a session the agent ended.
func (o *owners) closed(server, session string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, ownerKey{server, session})
}
