package gateway

import (
	"context"
	"sync"

	"github.com/writhq/writ/internal/task"
)

// flights are the requests in flight, by task, so that a task's end (or
// the revocation of the credential a request came with) cancels them: the
// upstream is told (MCP notifications/cancelled), and what it answers
// later is withheld.
type flights struct {
	mu     sync.Mutex
	byTask map[string]map[*flight]bool
}

type flight struct {
	jti    string
	cancel context.CancelCauseFunc
}

// errEnded is the cause of a request cancelled because its task ended or
// its credential was revoked.
type errEnded struct{ task string }

func (e *errEnded) Error() string {
	return "task " + e.task + " ended while the request was in flight"
}

// start registers a request of cred's task. The context it returns is
// cancelled, with an *errEnded cause, when the task ends or cred is
// revoked; done ends the registration.
func (f *flights) start(ctx context.Context, cred task.VerifiedCredential) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	fl := &flight{jti: cred.JTI, cancel: cancel}
	f.mu.Lock()
	if f.byTask == nil {
		f.byTask = map[string]map[*flight]bool{}
	}
	if f.byTask[cred.TaskID] == nil {
		f.byTask[cred.TaskID] = map[*flight]bool{}
	}
	f.byTask[cred.TaskID][fl] = true
	f.mu.Unlock()
	return ctx, func() {
		f.mu.Lock()
		delete(f.byTask[cred.TaskID], fl)
		if len(f.byTask[cred.TaskID]) == 0 {
			delete(f.byTask, cred.TaskID)
		}
		f.mu.Unlock()
		cancel(nil)
	}
}

// endTask cancels every request of the task.
func (f *flights) endTask(taskID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for fl := range f.byTask[taskID] {
		fl.cancel(&errEnded{task: taskID})
	}
}

// revoke cancels every request made with the credential jti.
func (f *flights) revoke(jti string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for taskID, m := range f.byTask {
		for fl := range m {
			if fl.jti == jti {
				fl.cancel(&errEnded{task: taskID})
			}
		}
	}
}

// ended reports whether ctx was cancelled by the end of its task.
func ended(ctx context.Context) bool {
	_, ok := context.Cause(ctx).(*errEnded)
	return ok
}
