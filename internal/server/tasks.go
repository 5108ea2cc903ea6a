package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/httpjson"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/notify"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/task"
)

// Body limits of the task API. Opening a task may carry an intent of up to
// task.MaxIntentBytes plus its scope.
const (
	maxTaskBody   = task.MaxIntentBytes + 64<<10
	maxDecideBody = 64 << 10
)

// newTaskService builds the task service once the ledger and policy are up.
func (s *Server) newTaskService(ctx context.Context) error {
	cfg := task.Config{
		Ledger: s.taskLedger(), Eraser: s.ledger, Store: s.dir.Store, Policy: s.policy, Environment: s.cfg.Environment,
		Origin: s.dir.Origin, DB: s.dir.Store.DB(), Logger: s.log.With("component", "task"),
		// Credential revocations reach the issuer at once (oauth.go), and
		// ended tasks the gateway (gateway.go); a projection mismatch is
		// repaired only when asked.
		OnRevoke: s.onRevoke, OnTaskEnded: s.onTaskEnded, AllowProjectionMismatch: s.cfg.RepairProjections,
		Shared: s.coordinator(), Rejections: s.limits,
		// The token endpoint's exchanges are issued by the task service.
		Issuer: s.issuer, CredentialTTL: s.cfg.Credentials.MaxTTL,
		// A result reported again for an action long completed is
		// looked up through the query index, opened after the tasks.
		FindAction: s.findAction,
		// A start loads the state's latest snapshot; one is taken every
		// task_snapshot_interval events (default 1,000,000) and at a
		// graceful stop; 0 in the configuration takes one at a graceful
		// stop only, -1 none.
		SnapshotInterval: snapshotInterval(s.cfg.TaskSnapshotInterval),
	}
	if s.dir.Signer != nil {
		// Both come from the signing key every replica shares: the digest
		// key so that replicas and restarts recognise each other's keyed
		// digests.
		cfg.Verifier, cfg.DigestKey = s.dir.Signer.Verifier(), s.dir.Signer.DigestKey()
	}
	red, err := s.cfg.Redaction.Engine()
	if err != nil {
		return err
	}
	cfg.Redactor = red
	if w := s.cfg.Approvals.Webhook; w.URL != "" {
		hook, err := notify.New(notify.Config{URL: w.URL, SecretFile: w.SecretFile, Timeout: w.Timeout,
			Logger: s.log.With("component", "webhook")})
		if err != nil {
			return err
		}
		s.webhook = hook
		cfg.OnApprovalRequested = func(p api.PendingApproval) { hook.Notify(p) }
	}
	s.tasks, err = task.New(ctx, cfg)
	return err
}

// findAction finds the events of an action in the query index.
func (s *Server) findAction(ctx context.Context, actionID string, fresh bool) ([]uint64, error) {
	if s.query == nil {
		return nil, errors.New("the query index is not open")
	}
	if fresh {
		return s.query.ix.ActionEventsFresh(ctx, actionID)
	}
	return s.query.ix.ActionEvents(ctx, actionID)
}

// taskRoutes registers the task and approval API.
func (s *Server) taskRoutes(mux *http.ServeMux) {
	requester := s.auth.RequireRole(identity.RoleRequester)
	readers := s.auth.RequireRole(identity.RoleRequester, identity.RoleApprover, identity.RoleAuditor, identity.RoleAdmin)
	approver := s.auth.RequireRole(identity.RoleApprover)
	enders := s.auth.RequireRole(identity.RoleRequester, identity.RoleAdmin)
	tracers := s.auth.RequireRole(identity.RoleRequester, identity.RoleAuditor, identity.RoleAdmin)

	mux.Handle("POST /v1/tasks", requester(http.HandlerFunc(s.openTask)))
	mux.Handle("GET /v1/tasks", readers(http.HandlerFunc(s.listTasks)))
	mux.Handle("GET /v1/tasks/{id}", readers(http.HandlerFunc(s.getTask)))
	mux.Handle("POST /v1/tasks/{id}/approvals", approver(http.HandlerFunc(s.decideTask)))
	mux.Handle("GET /v1/approvals", approver(http.HandlerFunc(s.listApprovals)))
	mux.Handle("POST /v1/approvals/{id}", approver(http.HandlerFunc(s.decideApproval)))
	mux.Handle("POST /v1/tasks/{id}/complete", enders(http.HandlerFunc(s.completeTask)))
	mux.Handle("POST /v1/tasks/{id}/revoke", enders(http.HandlerFunc(s.revokeTask)))
	mux.Handle("GET /v1/tasks/{id}/trace", tracers(http.HandlerFunc(s.traceTask)))
	s.holdRoutes(mux) // legal holds (retention.go)
}

// taskFail answers an error of the task service: a refusal with the
// status of its kind and its code, but invalid_request for every malformed
// request, and a credential that may no longer act (its task ended, it was
// revoked, between the token check and the decision) like any refused
// token: 401 with its OAuth code and a challenge (the task service has
// recorded it). Other errors go to fail.
func (s *Server) taskFail(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := refusal.As(err)
	switch {
	case !ok:
		s.fail(w, r, err)
	case e.Kind == refusal.Unauthenticated:
		answerToken(w, e, dpopScheme(r))
	case e.Kind == refusal.Invalid:
		writeError(w, e.Kind, "invalid_request", e.Detail)
	default:
		writeError(w, e.Kind, e.Code, e.Detail)
	}
}

// decodeJSON reads a JSON body of at most limit bytes into v strictly
// (httpjson.Decode), answering the error itself when it fails.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	return httpjson.Decode(w, r, limit, v)
}

func (s *Server) openTask(w http.ResponseWriter, r *http.Request) {
	var req api.OpenTask
	if !httpjson.JSONContentType(r.Header.Get("Content-Type")) {
		writeError(w, refusal.UnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
		return
	}
	buf, ok := readBody(w, r, maxTaskBody)
	if !ok {
		return
	}
	if err := httpjson.Unmarshal(buf, &req); err != nil {
		writeError(w, refusal.Invalid, "invalid_request", err.Error())
		return
	}
	p, _ := identity.PrincipalFrom(r.Context())
	out, err := s.tasks.Open(r.Context(), p, req)
	if err != nil {
		s.taskFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// listTasks lists the tasks the caller may see (task.Service.ListAs):
// their own, an approver's to decide, every task for auditors and admins.
func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) {
	p, _ := identity.PrincipalFrom(r.Context())
	tasks, err := s.tasks.ListAs(p, r.URL.Query().Get("state"))
	if err != nil {
		s.taskFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.TaskList{Tasks: tasks})
}

// getTask answers 404, as for an unknown task, to a caller who may not
// see the task.
func (s *Server) getTask(w http.ResponseWriter, r *http.Request) {
	p, _ := identity.PrincipalFrom(r.Context())
	t, err := s.tasks.ViewAs(p, r.PathValue("id"))
	if err != nil {
		s.taskFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) decideTask(w http.ResponseWriter, r *http.Request) {
	s.decide(w, r, s.tasks.DecideTask)
}

func (s *Server) decideApproval(w http.ResponseWriter, r *http.Request) {
	s.decide(w, r, s.tasks.DecideApproval)
}

// decide reads an approver's decision and hands it to fn (a task approval or
// a step-up) with the approver and the ID from the path.
func (s *Server) decide(w http.ResponseWriter, r *http.Request,
	fn func(context.Context, identity.Principal, string, api.Decide) (api.Decided, error)) {
	var d api.Decide
	if !decodeJSON(w, r, maxDecideBody, &d) {
		return
	}
	p, _ := identity.PrincipalFrom(r.Context())
	out, err := fn(r.Context(), p, r.PathValue("id"), d)
	if err != nil {
		s.taskFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listApprovals(w http.ResponseWriter, r *http.Request) {
	p, _ := identity.PrincipalFrom(r.Context())
	writeJSON(w, http.StatusOK, api.PendingApprovals{Approvals: s.tasks.ListPendingApprovals(p.ID)})
}

func (s *Server) completeTask(w http.ResponseWriter, r *http.Request) {
	p, _ := identity.PrincipalFrom(r.Context())
	if _, err := s.tasks.Complete(r.Context(), p, r.PathValue("id")); err != nil {
		s.taskFail(w, r, err)
		return
	}
	s.getTask(w, r)
}

// revokeBody is the optional body of POST /v1/tasks/{id}/revoke.
type revokeBody struct {
	Reason string `json:"reason"`
}

func (s *Server) revokeTask(w http.ResponseWriter, r *http.Request) {
	var b revokeBody
	if r.ContentLength != 0 && !decodeJSON(w, r, maxDecideBody, &b) {
		return
	}
	p, _ := identity.PrincipalFrom(r.Context())
	if _, err := s.tasks.Revoke(r.Context(), p, r.PathValue("id"), b.Reason); err != nil {
		s.taskFail(w, r, err)
		return
	}
	s.getTask(w, r)
}

// auditableTask returns the ID of the task the path names when the caller
// is an auditor, an admin or the task's own requester; otherwise it has
// answered: 404 to a caller who may not see the task (as for an unknown
// one), 403 to one who may see it but not do this, naming what they wanted
// to do.
func (s *Server) auditableTask(w http.ResponseWriter, r *http.Request, doing string) (string, bool) {
	p, _ := identity.PrincipalFrom(r.Context())
	id := r.PathValue("id")
	t, err := s.tasks.GetAs(p, id)
	if err != nil {
		s.taskFail(w, r, err)
		return "", false
	}
	if !p.HasRole(identity.RoleAuditor) && !p.HasRole(identity.RoleAdmin) && p.ID != t.Requester {
		writeError(w, refusal.Forbidden, "forbidden", "only auditors, admins and the task's requester may "+doing)
		return "", false
	}
	return id, true
}

// traceTask answers auditors and admins, and the task's own requester.
func (s *Server) traceTask(w http.ResponseWriter, r *http.Request) {
	id, ok := s.auditableTask(w, r, "trace it")
	if !ok {
		return
	}
	tr, err := s.tasks.Trace(r.Context(), id)
	if err == nil {
		err = s.witnessTrace(r.Context(), &tr)
	}
	if err != nil {
		s.taskFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tr)
}

// snapshotInterval is task.Config.SnapshotInterval for the configured
// task_snapshot_interval, whose 0 means a snapshot at a graceful stop only.
func snapshotInterval(n int) int {
	if n == 0 {
		return task.SnapshotAtClose
	}
	return n
}
