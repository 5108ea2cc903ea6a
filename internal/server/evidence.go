package server

import (
	"bytes"
	"errors"
	"net/http"
	"path/filepath"

	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/refusal"
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
	src := evidence.Source{Store: s.dir.Store, VerifierKey: s.dir.VerifierKey, Policies: ps, Tasks: s.tasks, Index: s.query.ix}
	s.witnessEvidence(&src)
	return src, nil
}

// taskEvidence answers a task's evidence bundle as a zip download, to
// auditors and admins and to the task's own requester. The bundle is built
// in memory first, so a failure is an error answer, never half a zip.
func (s *Server) taskEvidence(w http.ResponseWriter, r *http.Request) {
	id, ok := s.auditableTask(w, r, "export its evidence")
	if !ok {
		return
	}
	var opts evidence.Options
	if opts.From, ok = queryTime(w, r, "from"); !ok {
		return
	}
	if opts.To, ok = queryTime(w, r, "to"); !ok {
		return
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
			writeError(w, refusal.Unavailable, "not_yet_checkpointed", err.Error())
		case errors.Is(err, evidence.ErrPolicyMissing):
			s.log.ErrorContext(r.Context(), "evidence export: policy sources missing", "err", err, "task_id", id)
			writeError(w, refusal.Conflict, "policy_sources_missing", "a policy version that decided this task's events has no kept sources; see the server log")
		case errors.Is(err, ledger.ErrTampered):
			s.log.ErrorContext(r.Context(), "evidence export: ledger does not verify", "err", err, "task_id", id)
			writeError(w, refusal.Internal, "ledger_does_not_verify", "the ledger does not verify for this task; run 'writ ledger verify'")
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
