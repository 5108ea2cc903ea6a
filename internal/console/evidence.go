package console

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/identity"
)

// taskEvidence downloads a task's evidence bundle, to those who may trace
// the task (as GET /v1/tasks/{id}/evidence). The bundle is built in memory
// first, so a failure is an error page, never half a zip.
func (c *Console) taskEvidence(w http.ResponseWriter, r *http.Request, u user) {
	if c.cfg.Evidence == nil {
		c.errorPage(w, r, &u, http.StatusNotFound, "Not found", "Evidence export is not available on this server.")
		return
	}
	id := r.PathValue("id")
	t, err := c.cfg.Tasks.GetAs(u.p, id)
	if err != nil {
		c.taskError(w, r, u, err)
		return
	}
	if !u.p.HasRole(identity.RoleAuditor) && !u.p.HasRole(identity.RoleAdmin) && u.p.ID != t.Requester {
		c.errorPage(w, r, &u, http.StatusForbidden, "Not allowed", "Only auditors, admins and the task's requester may export its evidence.")
		return
	}
	var buf bytes.Buffer
	if err := c.cfg.Evidence(r.Context(), id, &buf); err != nil {
		if errors.Is(err, evidence.ErrNotCovered) {
			w.Header().Set("Retry-After", "1")
			c.errorPage(w, r, &u, http.StatusServiceUnavailable, "Not yet", "The task's newest events are not yet covered by a signed checkpoint; try again in a moment.")
			return
		}
		c.log.ErrorContext(r.Context(), "console: evidence export", "task_id", id, "err", err)
		c.errorPage(w, r, &u, http.StatusInternalServerError, "Export failed", "The evidence bundle could not be built; see the server log.")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", `attachment; filename="`+id+`.evidence.zip"`)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}

// accessBody is the Access page's data.
type accessBody struct {
	Agent, FromText, ToText string
	Report                  *evidence.AccessReport
	Error                   string
}

// accessPage shows the standing-access report: per agent, the access its
// tasks granted against what it exercised, and what stands out.
func (c *Console) accessPage(w http.ResponseWriter, r *http.Request, u user) {
	if c.cfg.Access == nil {
		c.errorPage(w, r, &u, http.StatusNotFound, "Not found", "The standing-access report is not available on this server.")
		return
	}
	q := r.URL.Query()
	body := accessBody{Agent: strings.TrimSpace(q.Get("agent")), FromText: q.Get("from"), ToText: q.Get("to")}
	opts, err := accessOptions(q)
	if err != nil {
		body.Error = err.Error()
		c.render(w, r, &u, http.StatusBadRequest, "access", "Access", "access", body)
		return
	}
	rep, err := c.cfg.Access(r.Context(), opts)
	if err != nil {
		c.log.ErrorContext(r.Context(), "console: access report", "err", err)
		body.Error = "The report could not be built; see the server log."
		c.render(w, r, &u, http.StatusInternalServerError, "access", "Access", "access", body)
		return
	}
	body.Report = rep
	c.render(w, r, &u, http.StatusOK, "access", "Access", "access", body)
}

// accessOptions reads the Access page's form.
func accessOptions(q url.Values) (evidence.AccessOptions, error) {
	var opts evidence.AccessOptions
	opts.Agent = strings.TrimSpace(q.Get("agent"))
	if len(opts.Agent) > 512 {
		return opts, errors.New("the agent filter is limited to 512 bytes")
	}
	var err error
	if opts.From, err = parseWhen(q.Get("from"), false); err != nil {
		return opts, errors.New("from: " + err.Error())
	}
	if opts.To, err = parseWhen(q.Get("to"), true); err != nil {
		return opts, errors.New("to: " + err.Error())
	}
	if !opts.From.IsZero() && !opts.To.IsZero() && opts.From.After(opts.To) {
		return opts, errors.New("from is after to")
	}
	return opts, nil
}
