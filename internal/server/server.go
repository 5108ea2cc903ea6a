// Package server is writ's HTTP server: it opens the data directory, runs the
// ledger and serves the API.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/writhq/writ/internal/abuse"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/credential"
	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/gateway"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/metrics"
	"github.com/writhq/writ/internal/notify"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/proxy"
	"github.com/writhq/writ/internal/sink"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/tracing"
	"github.com/writhq/writ/internal/witness"
)

// Server is a running writ server.
type Server struct {
	cfg    config.Config
	log    *slog.Logger
	dir    *datadir.Dir
	ledger *ledger.Ledger
	auth   *identity.Authenticator
	// limits are the rate limits and the gate of auth.rejected events
	// (limits.go).
	limits *abuse.Limiter
	policy *policy.Policy
	tasks  *task.Service // tasks, approvals and authorizations (tasks.go)
	// query is the ledger's query index and its tailer (events.go).
	query *queryTailer
	// webhook notifies approvers, when configured (tasks.go).
	webhook *notify.Webhook

	// Task credentials (oauth.go, authorize.go).
	issuer         *credential.Issuer
	replay         *credential.ReplayCache
	requireBinding bool // this environment refuses bearer tokens

	http *http.Server
	ln   net.Listener

	// Metrics and traces (observe.go); metricsHTTP serves metrics.listen.
	metrics     *metrics.Metrics
	tracer      *tracing.Tracer
	metricsHTTP *http.Server
	metricsLn   net.Listener

	// gw is the MCP gateway and the HTTP proxy (gateway.go); mcp is the
	// gateway once built, for the task service's hooks, which may run
	// before.
	gw    *gateways
	mcp   atomic.Pointer[gateway.Gateway]
	proxy atomic.Pointer[proxy.Proxy]

	stopping atomic.Bool

	// followers are the ledger's followers once they run: the task
	// state's and the query index's, handed each commit (replicas.go).
	followers followers

	// witness submits checkpoints to the witnesses (witness.go);
	// witnessLoop is its loop, told of each commit.
	witness     *witnessing
	witnessLoop atomic.Pointer[witness.Loop]

	// retention erases bodies past their period (retention.go).
	retention *retaining
	// sinks stream the ledger's events (sinks.go), told of each commit.
	sinks atomic.Pointer[sink.Set]
}

// New opens the data directory for writing (taking its lock), starts the
// ledger and binds the listen address. Serve starts answering.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkStartup(cfg, log); err != nil {
		return nil, err
	}
	dir, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, dir: dir}
	if err := s.newObservability(ctx); err != nil {
		dir.Close()
		return nil, err
	}
	s.ledger, err = ledger.New(ctx, ledger.Config{
		OnCommit:           s.ledgerCommitted,
		Observe:            s.metrics.ObserveCommit,
		Store:              dir.Store,
		Signer:             dir.Signer,
		MaxBodyBytes:       cfg.Ledger.MaxBodyBytes,
		MaxBatch:           cfg.Ledger.MaxBatch,
		CheckpointInterval: cfg.Ledger.CheckpointInterval,
		CommitDelay:        cfg.Ledger.CommitDelay,
		Logger:             log.With("component", "ledger"),
	})
	if err != nil {
		dir.Close()
		return nil, err
	}
	if cfg.Dev {
		log.Warn(identity.DevWarning)
	}
	s.limits, err = abuse.New(cfg.RateLimits, abuse.Options{Recorder: s.ledger, Logger: log.With("component", "limits")})
	if err != nil {
		s.closeParts(ctx)
		return nil, err
	}
	s.auth, err = identity.New(ctx, cfg.Identity, identity.Options{
		Dev: cfg.Dev, DataDir: cfg.DataDir, Recorder: s.ledger, Limits: s.limits, Logger: log.With("component", "identity"),
	})
	if err != nil {
		s.closeParts(ctx)
		return nil, fmt.Errorf("identity: %w", err)
	}
	if err := s.openPolicy(ctx); err != nil {
		s.closeParts(ctx)
		return nil, err
	}
	// The credential issuer comes before the task service, whose
	// revocations it must hear (oauth.go).
	if err := s.newCredentials(); err != nil {
		s.closeParts(ctx)
		return nil, fmt.Errorf("credentials: %w", err)
	}
	if err := s.checkSharedKeys(ctx); err != nil {
		s.closeParts(ctx)
		return nil, fmt.Errorf("credentials: %w", err)
	}
	// Tasks replay the ledger and check their projection tables (tasks.go).
	if err := s.newTaskService(ctx); err != nil {
		s.closeParts(ctx)
		var pm *task.ProjectionMismatchError
		if errors.As(err, &pm) {
			return nil, err
		}
		return nil, fmt.Errorf("tasks: %w", err)
	}
	s.followers.add(s.tasks.Follower())
	// Revocations recorded before this start are refused again at once.
	s.loadRevocations()
	if err := s.openQuery(ctx); err != nil {
		s.closeParts(ctx)
		return nil, fmt.Errorf("query index: %w", err)
	}
	if err := s.observeState(ctx); err != nil {
		s.closeParts(ctx)
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if err := s.newGateways(); err != nil {
		s.closeParts(ctx)
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if err := s.newWitnessing(); err != nil {
		s.closeParts(ctx)
		return nil, fmt.Errorf("witnesses: %w", err)
	}
	if err := s.newRetention(); err != nil {
		s.closeParts(ctx)
		return nil, fmt.Errorf("retention: %w", err)
	}
	if err := s.newSinks(ctx); err != nil {
		s.closeParts(ctx)
		return nil, fmt.Errorf("sinks: %w", err)
	}
	s.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		s.closeParts(ctx)
		return nil, fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	if err := s.listenMetrics(); err != nil {
		s.ln.Close()
		s.closeParts(ctx)
		return nil, err
	}
	s.http = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			s.ln.Close()
			s.closeParts(ctx)
			return nil, fmt.Errorf("loading TLS certificate: %w", err)
		}
		s.http.TLSConfig = s.auth.TLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		s.ln = tls.NewListener(s.ln, s.http.TLSConfig)
	}
	return s, nil
}

// openPolicy loads the policy bundle (or the embedded default pack), keeping
// every version's sources under <data-dir>/policies, and watches the bundle
// for changes.
func (s *Server) openPolicy(ctx context.Context) error {
	sources, err := policy.NewDirStore(filepath.Join(s.cfg.DataDir, "policies"))
	if err != nil {
		return fmt.Errorf("policy sources: %w", err)
	}
	s.policy, err = policy.New(ctx, policy.Config{
		Dir: s.cfg.Policy.Dir, Engine: s.cfg.Policy.Engine, Timeout: s.cfg.Policy.Timeout,
		ShadowDir: s.cfg.Policy.ShadowDir, ShadowEngine: s.cfg.Policy.ShadowEngine,
		Recorder: s.ledger, Sources: sources, Logger: s.log.With("component", "policy"),
	})
	if err != nil {
		return fmt.Errorf("loading policy: %w", err)
	}
	if err := s.policy.Watch(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("watching policy bundle: %w", err)
	}
	s.log.Info("policy active", "version", s.policy.Version(), "dir", s.cfg.Policy.Dir)
	return nil
}

// Reload reloads the policy bundle, as SIGHUP does. A bundle that fails to
// compile is rejected and the active one stays.
func (s *Server) Reload(ctx context.Context) error {
	return s.policy.Reload(ctx)
}

// closeParts releases what New opened, in reverse order.
func (s *Server) closeParts(ctx context.Context) error {
	var errs []error
	// The last refusal summaries go to the ledger while it is open.
	errs = append(errs, s.limits.Close(ctx))
	s.stopRetention()
	errs = append(errs, s.stopGateways(ctx))
	errs = append(errs, s.closeQuery())
	if s.tasks != nil {
		errs = append(errs, s.tasks.Close())
	}
	if s.webhook != nil {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		errs = append(errs, s.webhook.Close(wctx))
		cancel()
	}
	if s.policy != nil {
		errs = append(errs, s.policy.Close())
	}
	if s.auth != nil {
		errs = append(errs, s.auth.Close())
	}
	errs = append(errs, s.closeSinks(ctx))
	errs = append(errs, s.ledger.Close(ctx), s.closeWitnessing(ctx), s.dir.Close())
	errs = append(errs, s.stopObservability(ctx))
	return errors.Join(errs...)
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Ledger returns the server's ledger.
func (s *Server) Ledger() *ledger.Ledger { return s.ledger }

// Serve answers requests until ctx is done, then shuts down gracefully: it
// stops taking connections, lets in-flight requests finish (and so their
// ledger commits), closes the ledger with a final checkpoint and releases the
// data directory.
func (s *Server) Serve(ctx context.Context) error {
	scheme := "http"
	if s.http.TLSConfig != nil {
		scheme = "https"
	}
	s.log.Info("writ server listening", "url", scheme+"://"+s.Addr(), "data_dir", s.cfg.DataDir,
		"origin", s.dir.Origin, "verifier_key", s.dir.VerifierKey, "environment", s.cfg.Environment)
	s.startGateways(ctx)
	s.limits.Start()
	s.serveMetrics()
	if w := s.WitnessLoop(); w != nil {
		w.Start()
	}
	s.startRetention()
	s.startSinks()
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.ln) }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var serveErr error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case serveErr = <-errc:
			break wait
		case <-hup:
			if err := s.Reload(ctx); err != nil {
				s.log.Error("policy reload on SIGHUP rejected; the active policy stays", "err", err, "version", s.policy.Version())
			} else {
				s.log.Info("policy reloaded on SIGHUP", "version", s.policy.Version())
			}
		}
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(serveErr, s.Shutdown(shutCtx))
}

// Shutdown stops the server gracefully; see Serve.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.stopping.CompareAndSwap(false, true) {
		return nil
	}
	s.log.Info("shutting down: finishing in-flight requests")
	err := s.http.Shutdown(ctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	cerr := s.closeParts(ctx)
	s.log.Info("writ server stopped")
	return errors.Join(err, cerr)
}
