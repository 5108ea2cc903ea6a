package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/writhq/writ/internal/console"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/witness"
)

// consoleRoutes mounts the web console at /ui/ unless it is disabled. It
// builds on the task service, the ledger store and the policy of the
// running server, so pages and API share one set of rules.
func (s *Server) consoleRoutes(mux *http.ServeMux) {
	if s.cfg.Console.Disabled {
		return
	}
	c, err := s.newConsole()
	if err != nil {
		// A console that cannot be built must not take the API down with
		// it; /ui/ answers that it is unavailable.
		s.log.Error("console unavailable", "err", err)
		mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, refusal.Unavailable, "console_unavailable", "the web console could not start; see the server log")
		})
		return
	}
	mux.Handle("/ui/", c)
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
}

func (s *Server) newConsole() (*console.Console, error) {
	sources, err := policy.NewDirStore(filepath.Join(s.cfg.DataDir, "policies"))
	if err != nil {
		return nil, fmt.Errorf("policy sources: %w", err)
	}
	cfg := console.Config{
		Tasks: s.tasks, Auth: s.auth, Store: s.dir.Store, Origin: s.dir.Origin, VerifierKey: s.dir.VerifierKey,
		Policy: s.policy, Sources: sources, Dev: s.cfg.Dev, DataDir: s.cfg.DataDir,
		Settings: s.cfg.Console, Identity: s.cfg.Identity, Logger: s.log.With("component", "console"),
		Secure: s.cfg.TLS.CertFile != "" || strings.HasPrefix(s.cfg.Console.PublicURL, "https://"),
	}
	if s.dir.Signer != nil {
		cfg.Verifier = s.dir.Signer.Verifier()
	}
	// Evidence bundles, as GET /v1/tasks/{id}/evidence builds them.
	src := evidence.Source{Store: s.dir.Store, VerifierKey: s.dir.VerifierKey, Policies: sources, Tasks: s.tasks}
	s.witnessEvidence(&src)
	cfg.Evidence = func(ctx context.Context, taskID string, w io.Writer) error {
		return evidence.Export(ctx, src, taskID, evidence.Options{}, w)
	}
	if s.witness != nil {
		wt := s.witness
		cfg.Witnesses = func(ctx context.Context) (*witness.Status, error) {
			st, err := witness.ReadStatus(ctx, wt.store, wt.witnesses, wt.quorum)
			return &st, err
		}
	}
	// The standing-access report, from the query index (events.go).
	if s.query != nil {
		ix := s.query.ix
		cfg.Access = func(ctx context.Context, opts evidence.AccessOptions) (*evidence.AccessReport, error) {
			return evidence.Access(ctx, ix, opts)
		}
	}
	return console.New(context.Background(), cfg)
}
