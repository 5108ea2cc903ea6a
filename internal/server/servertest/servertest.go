// Package servertest runs a real writ server inside a test's process, on a
// loopback port, for the tests of the packages built around it.
package servertest

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/server"
)

// Server is a running server. It stops when the test ends.
type Server struct {
	*server.Server
	// URL is its base URL, http://127.0.0.1:port.
	URL string

	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
	// stopped: the test called Stop, and has its error.
	stopped atomic.Bool
}

// Dev is the default configuration of a dev server (it trusts the local dev
// identity issuer) on a free loopback port, over the data directory dir,
// deciding for environment.
func Dev(dir, environment string) config.Config {
	cfg := config.Default()
	cfg.DataDir, cfg.Listen, cfg.Dev, cfg.Environment = dir, "127.0.0.1:0", true, environment
	return cfg
}

// Start starts a server with cfg and serves until the test ends. A server
// that fails to start fails the test at once; one the test did not stop
// itself, and that does not stop cleanly at the end, fails it then.
func Start(t testing.TB, cfg config.Config) *Server {
	t.Helper()
	return StartLogged(t, cfg, slog.New(slog.DiscardHandler))
}

// StartLogged is Start with the server's operational log sent to log.
func StartLogged(t testing.TB, cfg config.Config, log *slog.Logger) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	s := &Server{Server: srv, URL: "http://" + srv.Addr(), cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		if err := s.stop(); err != nil && !s.stopped.Load() {
			t.Errorf("stopping the server: %v", err)
		}
	})
	return s
}

// Stop stops the server and waits for its graceful shutdown (at most a
// minute), so that a test can read its data directory, and returns how
// Serve ended; checking that is then the test's business. Later calls
// return what the first one did.
func (s *Server) Stop() error {
	s.stopped.Store(true)
	return s.stop()
}

func (s *Server) stop() error {
	s.once.Do(func() {
		s.cancel()
		select {
		case s.err = <-s.done:
		case <-time.After(60 * time.Second):
			s.err = errors.New("server did not stop within 60s")
		}
	})
	return s.err
}
