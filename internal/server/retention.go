package server

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/httpjson"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/retention"
)

// retaining is the retention enforcer (docs/retention.md): built always,
// so that its report can list holds; run only with rules configured.
type retaining struct {
	enforcer *retention.Enforcer
	running  atomic.Bool
}

// newRetention prepares the enforcer over the task service and the query
// index; on a shared store one replica at a time sweeps (the store's lock
// service).
func (s *Server) newRetention() error {
	cursors, ok := s.dir.Store.(ledger.Cursors)
	if !ok {
		return fmt.Errorf("the %s store cannot keep retention cursors", s.dir.Backend)
	}
	rc := s.cfg.Retention
	cfg := retention.Config{Minimum: rc.Minimum.Duration, MinimumText: rc.Minimum.String(), Interval: rc.Interval,
		Store: s.dir.Store, Cursors: cursors, Tasks: s.tasks, Logger: s.log.With("component", "retention"),
		TaskEvents: func(ctx context.Context, ids []string) ([]uint64, error) {
			if _, err := s.query.ix.CatchUp(ctx); err != nil {
				return nil, err
			}
			return s.query.ix.TaskEvents(ctx, ids)
		}}
	for _, r := range rc.Rules {
		cfg.Rules = append(cfg.Rules, retention.Rule{Type: r.Type, Body: r.Body, DataClass: r.DataClass,
			Keep: r.Keep.Duration, KeepText: r.Keep.String()})
	}
	if c := s.coordinator(); c != nil {
		cfg.Locker = c
	}
	e, err := retention.New(cfg)
	if err != nil {
		return err
	}
	s.retention = &retaining{enforcer: e}
	return nil
}

// startRetention runs the sweeps, when there are rules to enforce.
func (s *Server) startRetention() {
	if s.retention == nil || len(s.cfg.Retention.Rules) == 0 {
		return
	}
	s.retention.running.Store(true)
	go s.retention.enforcer.Run()
}

// stopRetention stops the sweeps, before the task service and the ledger
// they erase through close.
func (s *Server) stopRetention() {
	if s.retention != nil && s.retention.running.CompareAndSwap(true, false) {
		s.retention.enforcer.Close()
	}
}

// Retention returns the server's retention enforcer.
func (s *Server) Retention() *retention.Enforcer { return s.retention.enforcer }

// holdRoutes registers legal holds, for auditors and admins.
func (s *Server) holdRoutes(mux *http.ServeMux) {
	auditors := s.auth.RequireRole(identity.RoleAuditor, identity.RoleAdmin)
	mux.Handle("POST /v1/tasks/{id}/hold", auditors(http.HandlerFunc(s.holdTask)))
	mux.Handle("DELETE /v1/tasks/{id}/hold", auditors(http.HandlerFunc(s.releaseTask)))
	mux.Handle("GET /v1/reports/retention", auditors(http.HandlerFunc(s.retentionReport)))
}

func (s *Server) holdTask(w http.ResponseWriter, r *http.Request) { s.changeHold(w, r, true) }

func (s *Server) releaseTask(w http.ResponseWriter, r *http.Request) { s.changeHold(w, r, false) }

// changeHold places or lifts a task's legal hold and answers the task.
func (s *Server) changeHold(w http.ResponseWriter, r *http.Request, hold bool) {
	var b api.HoldRequest
	if !decodeJSON(w, r, maxDecideBody, &b) {
		return
	}
	p, _ := identity.PrincipalFrom(r.Context())
	change := s.tasks.Release
	if hold {
		change = s.tasks.Hold
	}
	if _, err := change(r.Context(), p, r.PathValue("id"), b.Reason); err != nil {
		s.taskFail(w, r, err)
		return
	}
	s.getTask(w, r)
}

func (s *Server) retentionReport(w http.ResponseWriter, r *http.Request) {
	plan, err := s.retention.enforcer.Plan(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, plan)
}

// eraseBody erases one payload body: POST /v1/ledger/erasures. A body of
// a task under a legal hold is refused (409 legal_hold) unless forced.
func (s *Server) eraseBody(w http.ResponseWriter, r *http.Request) {
	if !httpjson.JSONContentType(r.Header.Get("Content-Type")) {
		writeError(w, refusal.UnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
		return
	}
	body, ok := readBody(w, r, 64<<10)
	if !ok {
		return
	}
	var req api.Erase
	if err := httpjson.Unmarshal(body, &req); err != nil {
		writeError(w, refusal.Invalid, "invalid_request", "want {index, name, reason, force}: "+err.Error())
		return
	}
	p, _ := identity.PrincipalFrom(r.Context())
	idx, err := s.tasks.EraseBody(r.Context(), p, ledger.BodyRef{Index: req.Index, Name: req.Name}, req.Reason, req.Force)
	if err != nil {
		if _, ok := refusal.As(err); ok {
			s.taskFail(w, r, err)
			return
		}
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.Appended{Index: idx})
}
