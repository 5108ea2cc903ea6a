package server

import (
	"context"
	"fmt"
	"os"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/sink"
)

// newSinks prepares the configured event sinks; Serve starts them. On a
// shared store one replica at a time runs each (the store's lock
// service), every replica reporting its lag.
func (s *Server) newSinks(ctx context.Context) error {
	if len(s.cfg.Sinks) == 0 {
		return nil
	}
	cursors, ok := s.dir.Store.(ledger.Cursors)
	if !ok {
		return fmt.Errorf("the %s store keeps no cursors", s.dir.Backend)
	}
	cfg := sink.Config{Sinks: s.cfg.Sinks, Store: s.dir.Store, Cursors: cursors, Origin: s.dir.Origin,
		Metrics: s.metrics, Logger: s.log.With("component", "sinks"), Getenv: os.Getenv}
	if c := s.coordinator(); c != nil {
		cfg.Locker, cfg.Watch = c, c.Watch
	}
	set, err := sink.New(ctx, cfg)
	if err != nil {
		return err
	}
	s.sinks.Store(set)
	return nil
}

// Sinks returns the server's event sinks, or nil without any.
func (s *Server) Sinks() *sink.Set { return s.sinks.Load() }

func (s *Server) startSinks() {
	if k := s.sinks.Load(); k != nil {
		k.Start()
	}
}

func (s *Server) closeSinks(ctx context.Context) error {
	if k := s.sinks.Load(); k != nil {
		return k.Close(ctx)
	}
	return nil
}

// sinkReadiness lists in a ready answer the sinks past their lag bound:
// writ still records (readiness stays up), but a SIEM is behind it.
func (s *Server) sinkReadiness(out map[string]any) {
	if k := s.sinks.Load(); k != nil {
		if lagging := k.Lagging(); len(lagging) > 0 {
			out["sinks_lagging"] = lagging
		}
	}
}
