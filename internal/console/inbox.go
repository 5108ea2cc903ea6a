package console

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/refusal"
)

// inboxBody is the approvals inbox's data.
type inboxBody struct {
	Approvals []pendingRow
	State     string // fingerprint of the list, for the live refresh
}

// pendingRow is one pending approval with its arguments pretty-printed.
type pendingRow struct {
	api.PendingApproval
	Args string
}

// inbox lists the approvals the signed-in approver may decide: the same
// list as GET /v1/approvals (their own tasks and decisions left out).
func (c *Console) inbox(w http.ResponseWriter, r *http.Request, u user) {
	list := c.cfg.Tasks.ListPendingApprovals(u.p.ID)
	rows := make([]pendingRow, len(list))
	for i, a := range list {
		rows[i] = pendingRow{PendingApproval: a, Args: prettyJSON(a.Arguments)}
	}
	c.render(w, r, &u, http.StatusOK, "inbox", "Approvals", "inbox", inboxBody{Approvals: rows, State: inboxState(list)})
}

// inboxState fingerprints a pending list: it changes when an approval
// arrives, is decided or expires.
func inboxState(list []api.PendingApproval) string {
	h := sha256.New()
	for _, a := range list {
		h.Write([]byte(a.ApprovalID))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// inboxStateJSON answers the inbox script's poll with the fingerprint and
// count of the caller's pending list.
func (c *Console) inboxState(w http.ResponseWriter, r *http.Request, u user) {
	list := c.cfg.Tasks.ListPendingApprovals(u.p.ID)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"state": inboxState(list), "count": len(list)})
}

// approvalPage shows one approval request, to decide: the page an agent's
// client sends its user to when a call waits for a step-up (URL-mode
// elicitation). It shows only a request the signed-in approver may decide
// now; any other (decided, expired, theirs as requester, unknown) is not
// found, as in the inbox.
func (c *Console) approvalPage(w http.ResponseWriter, r *http.Request, u user) {
	id := r.PathValue("id")
	for _, a := range c.cfg.Tasks.ListPendingApprovals(u.p.ID) {
		if a.ApprovalID == id {
			row := pendingRow{PendingApproval: a, Args: prettyJSON(a.Arguments)}
			c.render(w, r, &u, http.StatusOK, "approval", "Approval "+shortID(id), "inbox", row)
			return
		}
	}
	c.errorPage(w, r, &u, http.StatusNotFound, "Not waiting for you",
		"Approval "+id+" is not waiting for your decision: it was decided or has expired, or it is not yours to decide.")
}

// decide records an approve or deny from the inbox through the task
// service, which enforces separation of duties exactly as for the API.
func (c *Console) decide(w http.ResponseWriter, r *http.Request, u user) {
	d := api.Decide{Decision: r.PostForm.Get("decision"), Reason: strings.TrimSpace(r.PostForm.Get("reason"))}
	out, err := c.cfg.Tasks.DecideApproval(r.Context(), u.p, r.PathValue("id"), d)
	if err != nil {
		c.taskError(w, r, u, err)
		return
	}
	verb := "Approved"
	if d.Decision == "deny" {
		verb = "Denied"
	}
	c.flash(u, verb+" "+out.ApprovalID+": task "+out.TaskID+" is now "+out.State+".", false)
	to := "/ui/inbox"
	if r.PostForm.Get("next") == "task" {
		to = "/ui/tasks/" + out.TaskID
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// taskError answers a task service refusal with its status and detail, and
// anything else as an internal error.
func (c *Console) taskError(w http.ResponseWriter, r *http.Request, u user, err error) {
	e, ok := refusal.As(err)
	if !ok {
		c.log.ErrorContext(r.Context(), "console: task service", "err", err, "path", r.URL.Path)
		c.errorPage(w, r, &u, http.StatusInternalServerError, "Not recorded", "Nothing was recorded: the server could not complete this. See the server log.")
		return
	}
	heading := "Failed"
	switch e.Kind {
	case refusal.Invalid:
		heading = "Invalid"
	case refusal.NotFound:
		heading = "Not found"
	case refusal.Forbidden:
		heading = "Not allowed"
	case refusal.Conflict:
		heading = "Not possible now"
	}
	c.errorPage(w, r, &u, e.Kind.HTTPStatus(), heading, e.Detail)
}

// prettyJSON indents raw JSON for display; empty stays empty.
func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return string(raw)
	}
	return string(b)
}
