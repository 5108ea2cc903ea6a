package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/metrics"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/store/postgres"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/tracing"
	"github.com/writhq/writ/internal/version"
)

// Enforcement points as writ_decisions_total{point} and the spans'
// writ.point name them: the names the policy input's request.gateway gives
// them (policy.Gateways).
const (
	pointAPI   = policy.GatewayAPI
	pointMCP   = policy.GatewayMCP
	pointProxy = policy.GatewayProxy
	pointToken = policy.GatewayToken
)

var decisionPoints = []string{pointAPI, pointMCP, pointProxy, pointToken}

// newObservability builds the metrics and, when configured, the tracer:
// before the ledger, whose commits they observe.
func (s *Server) newObservability(ctx context.Context) error {
	s.metrics = metrics.New(metrics.Config{Points: decisionPoints})
	t := s.cfg.Tracing
	var err error
	s.tracer, err = tracing.New(ctx, tracing.Config{Endpoint: t.Endpoint, ServiceName: t.ServiceName,
		SampleRatio: t.SampleRatio, Version: version.String()})
	if err != nil {
		return err
	}
	if s.tracer != nil {
		s.log.Info("tracing on: spans go over OTLP/HTTP")
	}
	return nil
}

// observeState registers the gauges read at scrape time, once the task
// service and the rate limits run, and the ledger's size at start.
func (s *Server) observeState(ctx context.Context) error {
	if n, err := s.dir.Store.Size(ctx); err == nil {
		s.metrics.SetLedgerSize(n)
	}
	if st, ok := s.dir.Store.(interface {
		SequenceStats() postgres.SequenceStats
	}); ok {
		if err := s.metrics.Sequenced(func() metrics.SequenceCounts {
			c := st.SequenceStats()
			return metrics.SequenceCounts{Ahead: c.Ahead, Refused: c.Refused, Locked: c.Locked}
		}); err != nil {
			return err
		}
	}
	if err := s.metrics.Tasks(func() metrics.TaskCounts {
		c := s.tasks.Counts()
		return metrics.TaskCounts{ActiveTasks: c.ActiveTasks, PendingApprovals: c.PendingApprovals,
			CallsHeld: c.CallsHeld, CallsPastWindow: c.CallsPastWindow}
	}); err != nil {
		return err
	}
	return s.metrics.RateLimited(func() metrics.RateLimitCounts {
		c := s.limits.Stats().Counters
		return metrics.RateLimitCounts{Unauthenticated: c.LimitedUnauthenticated, Failed: c.LimitedFailed, Principal: c.LimitedPrincipal}
	})
}

// taskLedger is what the task service appends through: the ledger, and
// with tracing on a wrapper that names each record on the span of the
// request that made it.
func (s *Server) taskLedger() task.Appender {
	if s.tracer == nil {
		return s.ledger
	}
	return tracedLedger{s.ledger}
}

// tracedLedger adds to the span in the caller's context the ledger index
// of the records it committed: writ.ledger.index for the decision's
// record, writ.ledger.result_index for a call's outcome, and the task and
// policy version they name.
type tracedLedger struct{ task.Appender }

func (l tracedLedger) AppendAll(ctx context.Context, events []ledger.Event) (uint64, error) {
	first, err := l.Appender.AppendAll(ctx, events)
	if err != nil {
		return first, err
	}
	span := tracing.FromContext(ctx)
	if !span.On() {
		return first, nil
	}
	for i, ev := range events {
		idx := int64(first) + int64(i)
		switch ev.Type {
		case ledger.TypeActionCompleted:
			span.Set(tracing.KeyResultIndex.Int64(idx))
			continue
		case ledger.TypeActionAuthorized, ledger.TypeActionDenied, ledger.TypePolicyDecided,
			ledger.TypeAuthRejected, ledger.TypeToolsHidden:
		default:
			continue
		}
		kv := append(make([]attribute.KeyValue, 0, 3), tracing.KeyLedgerIndex.Int64(idx))
		if ev.TaskID != "" {
			kv = append(kv, tracing.KeyTaskID.String(ev.TaskID))
		}
		if ev.PolicyVersion != "" {
			kv = append(kv, tracing.KeyPolicyVersion.String(ev.PolicyVersion))
		}
		span.Set(kv...)
		break
	}
	return first, nil
}

// decider is the task service as the enforcement points call it: each
// answer to a tool call is counted in writ_decisions_total and, with
// tracing on, described on the point's span.
type decider struct {
	*task.Service
	m       *metrics.Metrics
	tracing bool
}

func (s *Server) decider() decider {
	return decider{Service: s.tasks, m: s.metrics, tracing: s.tracer != nil}
}

func (d decider) Authorize(ctx context.Context, cred task.VerifiedCredential, req api.Authorize, rc task.Request) (api.Authorized, error) {
	out, err := d.Service.Authorize(ctx, cred, req, rc)
	o := outcomeOf(out, err)
	d.m.Decision(rc.Gateway, o)
	if d.tracing {
		if span := tracing.FromContext(ctx); span.On() {
			// In one call: the span's attributes grow by exactly what each
			// call adds.
			kv := append(make([]attribute.KeyValue, 0, 6), tracing.KeyPoint.String(rc.Gateway), tracing.KeyToolName.String(req.Tool),
				tracing.KeyTaskID.String(cred.TaskID), tracing.KeyDecision.String(o.String()))
			if out.DecisionID != "" {
				kv = append(kv, tracing.KeyDecisionID.String(out.DecisionID))
			}
			if out.ActionID != "" {
				kv = append(kv, tracing.KeyToolCallID.String(out.ActionID))
			}
			span.Set(kv...)
		}
	}
	return out, err
}

// outcomeOf is the outcome of an answer from Authorize: a refusal of the
// task service (a credential refused mid-way, bad input) is a deny, any
// other error one writ could not decide or record.
func outcomeOf(out api.Authorized, err error) metrics.Outcome {
	var re *refusal.Error
	switch {
	case errors.As(err, &re) && re.Kind != refusal.Unavailable && re.Kind != refusal.Internal:
		return metrics.Deny
	case err != nil:
		return metrics.Error
	case out.Allow:
		return metrics.Allow
	case out.ApprovalRequired:
		return metrics.RequireApproval
	}
	return metrics.Deny
}

// traced gives a route's requests a span of their own (with tracing on),
// continuing the caller's trace: the decision API's calls and the token
// exchange.
func (s *Server) traced(route string, next http.HandlerFunc) http.HandlerFunc {
	if s.tracer == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, span := s.tracer.StartHTTP(r, route)
		defer func() { tracing.EndHTTP(span, metrics.Status(w)) }()
		next(w, r.WithContext(ctx))
	}
}

// countExchange counts each answer of the token endpoint in
// writ_decisions_total{point="token"}: a token is an allow, any refusal a
// deny (policy's, the identity's, a malformed request's), a 5xx an error.
func (s *Server) countExchange(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		next(w, r)
		o := metrics.Deny
		switch status := metrics.Status(w); {
		case status == http.StatusOK:
			o = metrics.Allow
		case status >= 500:
			o = metrics.Error
		}
		s.metrics.Decision(pointToken, o)
		if span := tracing.FromContext(r.Context()); span.On() {
			span.Set(tracing.KeyPoint.String(pointToken), tracing.KeyDecision.String(o.String()))
		}
	}
}

// metricsRoutes serves /metrics on the main listener to auditors and
// admins.
func (s *Server) metricsRoutes(mux *http.ServeMux, auditor func(http.Handler) http.Handler) {
	mux.Handle("GET /metrics", auditor(s.metrics.Handler()))
}

// listenMetrics binds metrics.listen, where /metrics is served without
// authentication, when it is set.
func (s *Server) listenMetrics() error {
	if s.cfg.Metrics.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Metrics.Listen)
	if err != nil {
		return fmt.Errorf("listening on metrics.listen %s: %w", s.cfg.Metrics.Listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, refusal.NotFound, "not_found", "this listener serves only GET /metrics")
	})
	s.metricsLn = ln
	s.metricsHTTP = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 16 << 10}
	return nil
}

// MetricsAddr returns the address of the metrics.listen listener, or ""
// when there is none.
func (s *Server) MetricsAddr() string {
	if s.metricsLn == nil {
		return ""
	}
	return s.metricsLn.Addr().String()
}

// serveMetrics serves the metrics listener until Shutdown.
func (s *Server) serveMetrics() {
	if s.metricsHTTP == nil {
		return
	}
	go func() {
		if err := s.metricsHTTP.Serve(s.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics listener stopped", "err", err)
		}
	}()
}

// stopObservability stops the metrics listener and exports the last spans.
func (s *Server) stopObservability(ctx context.Context) error {
	var errs []error
	if s.metricsHTTP != nil {
		if err := s.metricsHTTP.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if s.metricsLn != nil {
		s.metricsLn.Close() // when it was never served
	}
	if err := s.tracer.Shutdown(ctx); err != nil {
		s.log.Warn("exporting the last spans failed", "err", err)
	}
	return errors.Join(errs...)
}

// FlushTraces exports the spans that have ended (with tracing on) and
// waits for the collector's answer.
func (s *Server) FlushTraces(ctx context.Context) error { return s.tracer.Flush(ctx) }
