package server

import (
	"net/http"

	"github.com/writhq/writ/internal/identity"
)

// The rate limits (internal/abuse) wrap every route but the health checks
// (routes.go); the identity middleware, the task credential check and the
// token endpoint charge each verified principal (Admit), and every
// auth.rejected event passes them (Reject).

// limitRoutes serves the limiter's counters to auditors and admins:
// refusals counted without a record, requests answered 429, records that
// failed, and the memory the buckets hold.
func (s *Server) limitRoutes(mux *http.ServeMux) {
	auditor := s.auth.RequireRole(identity.RoleAuditor, identity.RoleAdmin)
	mux.Handle("GET /v1/rate-limits", auditor(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.limits.Stats())
	})))
}
