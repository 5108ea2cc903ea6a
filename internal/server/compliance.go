package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/witness"
)

// complianceReport answers GET /v1/reports/compliance: the readiness
// report over a window of the whole ledger (evidence.Compliance), for
// auditors and admins.
func (s *Server) complianceReport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k, v := range q {
		if len(v) > 1 || len(v[0]) > maxQueryParam {
			writeError(w, refusal.Invalid, "invalid_request", "parameter "+k+" is repeated or too long")
			return
		}
	}
	var opts evidence.ComplianceOptions
	var ok bool
	if opts.From, ok = queryTime(w, r, "from"); !ok {
		return
	}
	if opts.To, ok = queryTime(w, r, "to"); !ok {
		return
	}
	if f := q.Get("framework"); f != "" {
		opts.Frameworks = strings.Split(f, ",")
	}
	rep, err := evidence.Compliance(r.Context(), s.complianceSource(), opts)
	if err != nil {
		s.queryFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// complianceSource is what the readiness report reads on this server.
func (s *Server) complianceSource() evidence.ComplianceSource {
	src := evidence.ComplianceSource{Store: s.dir.Store, Index: s.query.ix, VerifierKey: s.dir.VerifierKey,
		Skipped: s.tasks.SkippedEvents}
	if wd := s.witness; wd != nil {
		src.Witnesses = func(ctx context.Context) (witness.Status, error) {
			return witness.ReadStatus(ctx, wd.store, wd.witnesses, wd.quorum)
		}
	}
	return src
}
