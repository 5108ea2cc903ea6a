// Package sink streams the ledger to the systems security teams watch:
// every event, in index order, at least once, to each configured sink (a
// NATS JetStream subject, an HTTP endpoint, a JSONL file), as OCSF,
// CloudEvents or writ's own envelope (docs/sinks.md).
//
// Each sink follows the ledger with a ledger.Follower and keeps its place
// as a cursor in the store named after it ("sink/<name>"), moved only once
// the destination has acknowledged a batch: a sink that is down, or a
// server killed mid-batch, delivers the same events again, never fewer.
// Every message names its event ("<origin>/<index>") and carries its leaf
// hash, so a receiver drops what it already has and can prove a record
// against the ledger (writ ledger proof <index>).
//
// Nothing on the request path waits for a sink: the ledger only tells the
// sinks it grew (Committed). A sink that fails retries with backoff and
// reports its lag; past its lag bound, readiness lists it. With replicas
// sharing a store, one of them at a time runs each sink (the store's lock
// "sink/<name>").
package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/metrics"
)

// Locker takes a named lock shared by the processes of one store, when
// several share it (store/postgres): one of them at a time runs a sink.
// held ends when the lock is released or lost.
type Locker interface {
	TryLock(ctx context.Context, name string) (held context.Context, unlock func(), ok bool, err error)
}

// Config configures the sinks of one server.
type Config struct {
	Sinks []config.SinkConfig
	// Store is the log; Cursors keeps each sink's place in it.
	Store   ledger.Store
	Cursors ledger.Cursors
	// Origin is the log's origin, in every message.
	Origin string
	// Locker, when set, lets one process of those sharing the store run
	// each sink; Watch, when set, wakes the sinks when another appends.
	Locker Locker
	Watch  func() (<-chan struct{}, func())
	// LockRetry is how long a process that does not run a sink waits
	// before it tries its lock again. Default 5s.
	LockRetry time.Duration
	// MinBackoff and MaxBackoff bound the wait before a failed delivery
	// is tried again. Defaults 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// Settle is the least time between two deliveries while events keep
	// coming, so that they go in fuller batches: at most 1/Settle
	// deliveries a second, each one cursor write to the store, whatever
	// the rate of commits. Default 50ms.
	Settle  time.Duration
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Getenv reads the secrets named by secret_env and token_env.
	// Default os.Getenv.
	Getenv func(string) string
	// HTTP is the HTTP sinks' client. Default: one with each sink's
	// timeout.
	HTTP *http.Client
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Store == nil || c.Cursors == nil:
		return errors.New("sinks: no store or cursors")
	case c.Origin == "":
		return errors.New("sinks: no origin")
	case c.LockRetry <= 0 || c.Settle < 0:
		return errors.New("sinks: LockRetry must be positive and Settle not negative")
	case c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff:
		return errors.New("sinks: want 0 < MinBackoff <= MaxBackoff")
	}
	for _, s := range c.Sinks {
		if err := ledger.CheckCursorName(CursorName(s.Name)); err != nil {
			return fmt.Errorf("sink %s: %w", s.Name, err)
		}
	}
	return nil
}

// CursorName is the name of a sink's cursor in the store, and of its lock.
func CursorName(sink string) string { return "sink/" + sink }

// Set is a server's sinks.
type Set struct {
	runners []*runner
	stop    context.CancelFunc
	ctx     context.Context
	wg      sync.WaitGroup
	once    sync.Once
}

// transport delivers one sink's messages.
type transport interface {
	// deliver sends msgs, consecutive and in index order. It returns nil
	// only once the destination holds every one durably (acknowledged,
	// answered 2xx, fsynced); after an error any of them may or may not
	// have arrived.
	deliver(ctx context.Context, msgs []Message) error
	close() error
}

var (
	_ transport = (*natsSink)(nil)
	_ transport = (*httpSink)(nil)
	_ transport = (*fileSink)(nil)
)

// New prepares the configured sinks: it reads their secrets and files
// and checks that each can be built, but connects to nothing; Start runs
// them.
func New(ctx context.Context, cfg Config) (*Set, error) {
	if cfg.LockRetry == 0 {
		cfg.LockRetry = 5 * time.Second
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = max(10*time.Second, cfg.MinBackoff)
	}
	if cfg.Settle == 0 {
		cfg.Settle = 50 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	bound := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: metrics.Namespace, Name: "sink_lag_bound_events",
		Help: "The lag, in events, past which an event sink shows in /readyz as lagging (sinks[].lag_bound)."}, []string{"sink"})
	delivered := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "sink_delivered_events_total",
		Help: "Ledger events an event sink's destination acknowledged (a redelivery counts again)."}, []string{"sink"})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "sink_delivery_failures_total",
		Help: "Deliveries of a batch of events that failed and are retried."}, []string{"sink"})
	if err := cfg.Metrics.Register(bound, delivered, failures); err != nil {
		return nil, fmt.Errorf("sinks: %w", err)
	}
	set := &Set{}
	for _, sc := range cfg.Sinks {
		sc = sc.WithDefaults()
		tr, err := newTransport(sc, cfg)
		if err != nil {
			set.closeTransports()
			return nil, fmt.Errorf("sink %s: %w", sc.Name, err)
		}
		r, err := newRunner(ctx, sc, cfg, tr)
		if err != nil {
			tr.close()
			set.closeTransports()
			return nil, fmt.Errorf("sink %s: %w", sc.Name, err)
		}
		bound.WithLabelValues(sc.Name).Set(float64(sc.LagBound))
		r.delivered, r.failures = delivered.WithLabelValues(sc.Name), failures.WithLabelValues(sc.Name)
		set.runners = append(set.runners, r)
	}
	set.ctx, set.stop = context.WithCancel(context.WithoutCancel(ctx))
	return set, nil
}

func newTransport(sc config.SinkConfig, cfg Config) (transport, error) {
	switch sc.Type {
	case config.SinkNATS:
		return newNATSSink(sc, cfg.Origin), nil
	case config.SinkFile:
		return newFileSink(sc), nil
	case config.SinkHTTP:
		s := &httpSink{url: sc.URL, origin: cfg.Origin, format: sc.Format, hec: sc.SplunkHEC, client: cfg.HTTP, now: time.Now}
		if s.client == nil {
			s.client = &http.Client{Timeout: sc.Timeout}
		}
		if sc.SecretFile != "" || sc.SecretEnv != "" {
			secret, err := readSecret("secret", sc.SecretFile, sc.SecretEnv, cfg.Getenv)
			if err != nil {
				return nil, err
			}
			if len(secret) < 16 {
				return nil, errors.New("the HMAC secret must be at least 16 bytes")
			}
			s.secret = []byte(secret)
		}
		if h := sc.SplunkHEC; h != nil {
			token, err := readSecret("splunk_hec token", h.TokenFile, h.TokenEnv, cfg.Getenv)
			if err != nil {
				return nil, err
			}
			s.token = token
		}
		return s, nil
	}
	return nil, fmt.Errorf("type %q", sc.Type)
}

// readSecret reads a secret from a file (trimmed of surrounding space) or
// an environment variable. Errors name where it was looked for, never
// what was found.
func readSecret(what, file, env string, getenv func(string) string) (string, error) {
	var v string
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading the %s file %s: %w", what, file, errors.Unwrap(err))
		}
		v = string(bytes.TrimSpace(b))
		if v == "" {
			return "", fmt.Errorf("the %s file %s is empty", what, file)
		}
		return v, nil
	}
	if v = getenv(env); v == "" {
		return "", fmt.Errorf("the %s variable %s is not set", what, env)
	}
	return v, nil
}

// Start runs every sink in the background until Close.
func (s *Set) Start() {
	s.once.Do(func() {
		for _, r := range s.runners {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				r.run(s.ctx)
			}()
		}
	})
}

// Committed hands the sinks the entries this process has just committed
// with their leaves' hashes (ledger.Config.OnCommit), so that they
// need not read them back from the store nor hash them again. It never
// blocks.
func (s *Set) Committed(first uint64, events []ledger.Event, leaves, hashes [][]byte) {
	for _, r := range s.runners {
		r.follow.Committed(first, events, leaves, hashes)
		r.grew(first + uint64(len(events)))
	}
}

// Close stops the sinks. A delivery in flight finishes, within its sink's
// timeout, and its cursor is recorded before the sink's lock is let go:
// whoever runs the sink next goes on after it. No other delivery starts.
// Close waits for them within ctx; one still running when ctx ends may be
// delivered again at the next start.
func (s *Set) Close(ctx context.Context) error {
	s.stop()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.closeTransports()
}

func (s *Set) closeTransports() error {
	var errs []error
	for _, r := range s.runners {
		errs = append(errs, r.tr.close())
	}
	return errors.Join(errs...)
}

// Status is one sink as readiness shows it.
type Status struct {
	Name string `json:"name"`
	// Lag is how many events the sink has yet to deliver; Bound its
	// configured lag_bound.
	Lag   uint64 `json:"lag_events"`
	Bound uint64 `json:"lag_bound"`
	// Active is whether this server runs the sink (with replicas, one
	// does); Error why its latest delivery failed, if it did.
	Active bool   `json:"active"`
	Error  string `json:"error,omitempty"`
}

// Statuses returns every sink's status.
func (s *Set) Statuses() []Status {
	out := make([]Status, len(s.runners))
	for i, r := range s.runners {
		out[i] = r.status()
	}
	return out
}

// Lagging returns the sinks whose lag is past their bound.
func (s *Set) Lagging() []Status {
	var out []Status
	for _, st := range s.Statuses() {
		if st.Lag > st.Bound {
			out = append(out, st)
		}
	}
	return out
}
