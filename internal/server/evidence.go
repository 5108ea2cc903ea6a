package server

import (
	"bytes"
	"errors"
	"net/http"
	"path/filepath"
	"time"

	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
)

// evidenceRoutes registers reconstruction: evidence bundles (this file),
// event queries and reports (events.go).
func (s *Server) evidenceRoutes(mux *http.ServeMux) {
	tracers := s.auth.RequireRole(identity.RoleRequester, identity.RoleAuditor, identity.RoleAdmin)
	auditor := s.auth.RequireRole(identity.RoleAuditor, identity.RoleAdmin)
	mux.Handle("GET /v1/tasks/{id}/evidence", tracers(http.HandlerFunc(s.taskEvidence)))
	s.queryRoutes(mux, auditor)
}

// EvidenceSource is what evidence.Export reads from on this server.
func (s *Server) EvidenceSource() (evidence.Source, error) {
	ps, err := policy.NewDirStore(filepath.Join(s.cfg.DataDir, "policies"))
	if err != nil {
		return evidence.Source{}, err
	}
	return evidence.Source{Store: s.dir.Store, VerifierKey: s.dir.VerifierKey, Policies: ps, Tasks: s.tasks, Index: s.query.ix}, nil
}

// taskEvidence answers a task's evidence bundle as a zip download, to
// auditors and admins and to the task's own requester. The bundle is built
// in memory first, so a failure is an error answer, never half a zip.
func (s *Server) taskEvidence(w http.ResponseWriter, r *http.Request) {
	p, _ := identity.PrincipalFrom(r.Context())
	id := r.PathValue("id")
	t, err := s.tasks.Get(id)
	if err != nil {
		s.taskFail(w, r, err)
		return
	}
	if !p.HasRole(identity.RoleAuditor) && !p.HasRole(identity.RoleAdmin) && p.ID != t.Requester {
		writeError(w, http.StatusForbidden, "forbidden", "only auditors, admins and the task's requester may export its evidence")
		return
	}
	var opts evidence.Options
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &opts.From}, {"to", &opts.To}} {
		v := r.URL.Query().Get(f.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || len(v) > 64 {
			writeError(w, http.StatusBadRequest, "invalid_request", f.name+" must be an RFC 3339 time")
			return
		}
		*f.dst = t
	}
	src, err := s.EvidenceSource()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var buf bytes.Buffer
	if err := evidence.Export(r.Context(), src, id, opts, &buf); err != nil {
		switch {
		case errors.Is(err, evidence.ErrNotCovered):
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "not_yet_checkpointed", err.Error())
		case errors.Is(err, evidence.ErrPolicyMissing):
			s.log.ErrorContext(r.Context(), "evidence export: policy sources missing", "err", err, "task_id", id)
			writeError(w, http.StatusConflict, "policy_sources_missing", "a policy version that decided this task's events has no kept sources; see the server log")
		case errors.Is(err, ledger.ErrTampered):
			s.log.ErrorContext(r.Context(), "evidence export: ledger does not verify", "err", err, "task_id", id)
			writeError(w, http.StatusInternalServerError, "ledger_does_not_verify", "the ledger does not verify for this task; run 'writ ledger verify'")
		default:
			s.taskFail(w, r, err)
		}
		return
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.evidence.zip"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}
