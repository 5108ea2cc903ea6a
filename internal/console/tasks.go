package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/task"
)

// maxListed bounds the rows of the task list; filters narrow it further.
const maxListed = 500

// taskFilter is the task list's filter form.
type taskFilter struct {
	State, Agent, Requester string
	Since, Until            time.Time
	SinceText, UntilText    string
}

// states offered by the filter form.
var states = []string{api.StatePendingApproval, api.StateActive, api.StateDenied, api.StateCompleted, api.StateExpired, api.StateRevoked}

// parseFilter reads the filter form. Times are RFC 3339, a date
// (2026-11-26) or a browser datetime-local value (2026-11-26T09:30), in UTC.
func parseFilter(q url.Values) (taskFilter, error) {
	f := taskFilter{State: q.Get("state"), Agent: strings.TrimSpace(q.Get("agent")),
		Requester: strings.TrimSpace(q.Get("requester")), SinceText: q.Get("since"), UntilText: q.Get("until")}
	if f.State != "" && !slices.Contains(states, f.State) {
		return f, errors.New("unknown state " + limit(f.State, 40))
	}
	if len(f.Agent) > 512 || len(f.Requester) > 512 {
		return f, errors.New("agent and requester filters are limited to 512 bytes")
	}
	var err error
	if f.Since, err = parseWhen(f.SinceText, false); err != nil {
		return f, errors.New("since: " + err.Error())
	}
	if f.Until, err = parseWhen(f.UntilText, true); err != nil {
		return f, errors.New("until: " + err.Error())
	}
	return f, nil
}

// parseWhen reads a filter time; a bare date means the start of that day,
// or its end when end is set.
func parseWhen(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if len(s) > 64 {
		return time.Time{}, errors.New("too long")
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02T15:04", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		if end {
			t = t.Add(24*time.Hour - time.Nanosecond)
		}
		return t, nil
	}
	return time.Time{}, errors.New("want a date (2026-11-26), a date and time (2026-11-26T09:30) or RFC 3339")
}

// match reports whether t passes the filter (state is applied by the
// service).
func (f taskFilter) match(t api.Task) bool {
	if f.Agent != "" && !strings.Contains(t.Agent, f.Agent) {
		return false
	}
	if f.Requester != "" && !strings.Contains(t.Requester, f.Requester) {
		return false
	}
	if !f.Since.IsZero() && t.CreatedAt.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && t.CreatedAt.After(f.Until) {
		return false
	}
	return true
}

// tasksBody is the task list's data.
type tasksBody struct {
	Filter    taskFilter
	States    []string
	Tasks     []api.Task
	Truncated bool
	Error     string
}

// taskList lists the tasks the viewer may see (as GET /v1/tasks), newest
// first, filtered.
func (c *Console) taskList(w http.ResponseWriter, r *http.Request, u user) {
	f, err := parseFilter(r.URL.Query())
	body := tasksBody{Filter: f, States: states}
	if err != nil {
		body.Error = err.Error()
		c.render(w, r, &u, http.StatusBadRequest, "tasks", "Tasks", "tasks", body)
		return
	}
	all, err := c.cfg.Tasks.ListAs(u.p, f.State)
	if err != nil {
		c.taskError(w, r, u, err)
		return
	}
	for i := len(all) - 1; i >= 0; i-- {
		if !f.match(all[i]) {
			continue
		}
		if len(body.Tasks) == maxListed {
			body.Truncated = true
			break
		}
		body.Tasks = append(body.Tasks, all[i])
	}
	c.render(w, r, &u, http.StatusOK, "tasks", "Tasks", "tasks", body)
}

// taskBody is the task page's data.
type taskBody struct {
	Task     api.Task
	Pending  *pendingRow // an approval of this task the viewer may decide
	CanEnd   bool        // the viewer may complete or revoke it
	CanHold  bool        // the viewer may place or lift its legal hold
	CanTrace bool
	Timeline *timeline
	TraceErr string
	Evidence bool // the evidence bundle can be downloaded
}

// taskPage shows a task, what the viewer may do with it, and, for those
// who may trace it, its timeline. A task the viewer may not see is not
// found, as in GET /v1/tasks/{id}.
func (c *Console) taskPage(w http.ResponseWriter, r *http.Request, u user) {
	id := r.PathValue("id")
	t, err := c.cfg.Tasks.ViewAs(u.p, id)
	if err != nil {
		c.taskError(w, r, u, err)
		return
	}
	body := taskBody{Task: t}
	if u.p.HasRole(identity.RoleApprover) {
		for _, a := range c.cfg.Tasks.ListPendingApprovals(u.p.ID) {
			if a.TaskID == id {
				body.Pending = &pendingRow{PendingApproval: a, Args: prettyJSON(a.Arguments)}
				break
			}
		}
	}
	live := t.State == api.StateActive || t.State == api.StatePendingApproval
	body.CanEnd = live && u.p.HasAnyRole(identity.RoleRequester, identity.RoleAdmin) &&
		(u.p.ID == t.Requester || u.p.HasRole(identity.RoleAdmin))
	body.CanHold = u.p.HasRole(identity.RoleAuditor) || u.p.HasRole(identity.RoleAdmin)
	// The same rule as GET /v1/tasks/{id}/trace.
	body.CanTrace = u.p.HasRole(identity.RoleAuditor) || u.p.HasRole(identity.RoleAdmin) || u.p.ID == t.Requester
	body.Evidence = body.CanTrace && c.cfg.Evidence != nil
	if body.CanTrace {
		tr, err := c.cfg.Tasks.Trace(r.Context(), id)
		if err != nil {
			c.log.ErrorContext(r.Context(), "console: trace", "task", id, "err", err)
			body.TraceErr = "The timeline could not be built or did not verify: " + err.Error()
		} else if tl, err := buildTimeline(tr); err != nil {
			body.TraceErr = err.Error()
		} else {
			body.Timeline = tl
		}
	}
	c.render(w, r, &u, http.StatusOK, "task", "Task "+shortID(id), "tasks", body)
}

// completeTask and revokeTask end a task through the task service, which
// allows only its requester or an admin.
func (c *Console) completeTask(w http.ResponseWriter, r *http.Request, u user) {
	complete := func(ctx context.Context, p identity.Principal, id, _ string) (task.Task, error) {
		return c.cfg.Tasks.Complete(ctx, p, id)
	}
	c.changeTask(w, r, u, complete, func(id string) string {
		return "Task " + id + " completed; its credentials are revoked."
	})
}

func (c *Console) revokeTask(w http.ResponseWriter, r *http.Request, u user) {
	c.changeTask(w, r, u, c.cfg.Tasks.Revoke, func(id string) string {
		return "Task " + id + " revoked, with its child tasks and credentials."
	})
}

// holdTask and releaseTask place and lift a task's legal hold through the
// task service, which allows only auditors and admins.
func (c *Console) holdTask(w http.ResponseWriter, r *http.Request, u user) {
	c.changeTask(w, r, u, c.cfg.Tasks.Hold, func(id string) string {
		return "Task " + id + " is under legal hold: no body of its events or its children's is erased until the hold is lifted."
	})
}

func (c *Console) releaseTask(w http.ResponseWriter, r *http.Request, u user) {
	c.changeTask(w, r, u, c.cfg.Tasks.Release, func(id string) string {
		return "The legal hold of task " + id + " is lifted."
	})
}

// changeTask applies change, with the form's reason, to the task in the
// path as u. A refusal is answered with its error page; otherwise the
// browser returns to the task's page, flashing done(id).
func (c *Console) changeTask(w http.ResponseWriter, r *http.Request, u user,
	change func(ctx context.Context, p identity.Principal, id, reason string) (task.Task, error), done func(id string) string) {
	id := r.PathValue("id")
	if _, err := change(r.Context(), u.p, id, strings.TrimSpace(r.PostForm.Get("reason"))); err != nil {
		c.taskError(w, r, u, err)
		return
	}
	c.flash(u, done(id), false)
	http.Redirect(w, r, "/ui/tasks/"+id, http.StatusSeeOther)
}
