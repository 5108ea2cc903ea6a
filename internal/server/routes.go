package server

import (
	"errors"
	"net/http"

	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/metrics"
	"github.com/writhq/writ/internal/refusal"
)

// routes builds the HTTP handler. Every route is listed here.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)

	auditor := s.auth.RequireRole(identity.RoleAuditor, identity.RoleAdmin)
	admin := s.auth.RequireRole(identity.RoleAdmin)

	// The ledger as a C2SP tlog-tiles log, for auditors.
	mux.Handle("GET /ledger/checkpoint", auditor(http.HandlerFunc(s.ledgerCheckpoint)))
	mux.Handle("GET /ledger/key", auditor(http.HandlerFunc(s.ledgerKey)))
	mux.Handle("GET /ledger/tile/", auditor(http.HandlerFunc(s.ledgerTile)))

	// Ledger administration.
	mux.Handle("POST /v1/ledger/events", admin(http.HandlerFunc(s.appendEvent)))
	mux.Handle("POST /v1/ledger/erasures", admin(http.HandlerFunc(s.eraseBody)))

	s.taskRoutes(mux)
	s.limitRoutes(mux) // the rate limits' counters (limits.go)
	s.evidenceRoutes(mux)
	s.consoleRoutes(mux) // the web console at /ui/ (console.go)
	s.metricsRoutes(mux, auditor)

	// Task credentials (oauth.go) and the decision API (authorize.go): the
	// token endpoint authenticates by the subject token, the decision API
	// by the task token, the key set is public.
	// Each has a span of its own (observe.go), and the token endpoint's
	// answers are counted as decisions.
	mux.HandleFunc("POST /oauth2/token", s.traced("POST /oauth2/token", s.countExchange(s.exchangeToken)))
	mux.HandleFunc("GET /oauth2/jwks", s.jwks)
	mux.HandleFunc("POST /v1/authorize", s.traced("POST /v1/authorize", s.authorizeAction))
	mux.HandleFunc("POST /v1/actions/{id}/result", s.traced("POST /v1/actions/{id}/result", s.actionResult))
	mux.HandleFunc("GET /v1/approvals/{id}/status", s.stepUpStatus)
	s.gatewayRoutes(mux) // MCP gateway and HTTP proxy (gateway.go)

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, refusal.NotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	// Rate limits come first, health checks aside (limits.go); every
	// answer is counted by the route that matched (observe.go).
	return s.metrics.Middleware(s.recoverer(s.limits.Middleware(metrics.Route(mux))))
}

// recoverer turns a panic in a handler into a 500 instead of a dropped
// connection, and logs it.
func (s *Server) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "handler panic", "panic", v, "path", r.URL.Path)
				writeError(w, refusal.Internal, "internal", "internal error; see the server log")
			}
		}()
		h.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only while the server can record evidence: not shutting
// down, the store answers, its file is still the one opened, and the
// latest commit succeeded (or a probe commit since did).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.stopping.Load() {
		writeError(w, refusal.Unavailable, "shutting_down", "the server is shutting down")
		return
	}
	if _, err := s.dir.Store.Size(r.Context()); err != nil {
		s.log.ErrorContext(r.Context(), "readiness: store unreachable", "err", err)
		writeError(w, refusal.Unavailable, "store_unavailable", "the store does not answer")
		return
	}
	if err := s.ledger.Ready(r.Context()); err != nil {
		s.log.ErrorContext(r.Context(), "readiness: the ledger cannot record", "err", err)
		detail := "the ledger cannot record durably right now (its latest commit failed); nothing is acknowledged until a commit succeeds"
		if errors.Is(err, ledger.ErrStoreGone) {
			detail = "the ledger's database file was deleted or replaced under the server; nothing is acknowledged until writ restarts on the right file"
		}
		writeError(w, refusal.Unavailable, "store_unavailable", detail)
		return
	}
	out := map[string]any{"status": "ready"}
	if s.tasks != nil {
		// Events of the ledger the task state cannot apply: skipped at
		// start, logged then, and listed by 'writ ledger verify'.
		if _, n := s.tasks.SkippedEvents(); n > 0 {
			out["unapplied_events"] = n
		}
	}
	s.witnessReadiness(r.Context(), out)
	s.sinkReadiness(out)
	writeJSON(w, http.StatusOK, out)
}
