// Package abuse keeps anyone from growing writ's ledger or its work without
// bound: token buckets per client address for requests that present no
// credential or a refused one, and per principal for authenticated ones
// (answered 429 with Retry-After); and a bound on the auth.rejected events
// refusals write. A request with no credential at all is counted, never
// recorded; a refused credential is recorded one by one up to a budget per
// source and interval, and past it counted into one summary event per
// source, written when the interval ends and at shutdown.
package abuse

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/ledger"
)

// Reasons the limiter gives meaning to.
const (
	// NoCredentials is the reason of a refusal of a request that presented
	// no credential at all: counted, never recorded.
	NoCredentials = "no_credentials"
	// RateLimited counts, in a summary, credentials refused unchecked
	// because their source was past its failed budget.
	RateLimited = "rate_limited"
)

// Options are the parts of a Limiter that are not configuration.
type Options struct {
	// Recorder receives the summary events. Required.
	Recorder ledger.Recorder
	// Logger is the operational log; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Limiter is writ's rate limiter and the one gate every auth.rejected
// event passes. It is safe for concurrent use; a nil *Limiter limits
// nothing and records every refusal.
type Limiter struct {
	unauth, failed, principal *buckets
	trusted                   []netip.Prefix
	rej                       *window
	interval                  time.Duration

	rec ledger.Recorder
	log *slog.Logger
	now func() time.Time

	stats counters

	startOnce, closeOnce sync.Once
	stop, done           chan struct{}
	closeErr             error
}

// New builds a Limiter from cfg, which must be valid.
func New(cfg config.RateLimitsConfig, opts Options) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Recorder == nil {
		return nil, errors.New("abuse: no recorder")
	}
	trusted, _ := cfg.TrustedPrefixes()
	l := &Limiter{
		unauth:    newBuckets(cfg.Unauthenticated, cfg.MaxKeys),
		failed:    newBuckets(cfg.Failed, cfg.MaxKeys),
		principal: newBuckets(cfg.Principal, cfg.MaxKeys),
		trusted:   trusted,
		rej:       newWindow(cfg.Rejections.PerSource, cfg.Rejections.MaxSources),
		interval:  cfg.Rejections.Interval,
		rec:       opts.Recorder,
		log:       opts.Logger,
		now:       opts.Now,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l, nil
}

// Start begins closing an interval every rate_limits.rejections.interval:
// writing its summaries and logging the refusal counters when they moved.
func (l *Limiter) Start() {
	l.startOnce.Do(func() {
		go l.run()
	})
}

func (l *Limiter) run() {
	defer close(l.done)
	t := time.NewTicker(l.interval)
	defer t.Stop()
	var last Stats
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := l.Flush(ctx); err != nil {
			l.log.Error("recording refusal summaries failed; their counts are kept for the next interval", "err", err)
		}
		cancel()
		if s := l.Stats(); s.Counters != last.Counters {
			l.log.Info("refusals and rate limits", "no_credentials", s.NoCredentials,
				"limited_unauthenticated", s.LimitedUnauthenticated, "limited_failed", s.LimitedFailed,
				"limited_principal", s.LimitedPrincipal, "rejections_recorded", s.Recorded,
				"rejections_summarized", s.Summarized, "record_failures", s.RecordFailures,
				"summaries", s.Summaries, "summary_failures", s.SummaryFailures)
			last = s
		}
	}
}

// Close stops the interval loop and writes the summaries of the interval
// in progress, so a clean stop loses no count. Call it once no request is
// served any more, before the ledger closes. The error says the summaries
// are not durable (they are logged with their counts).
func (l *Limiter) Close(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.closeOnce.Do(func() {
		close(l.stop)
		l.startOnce.Do(func() { close(l.done) }) // never started
		<-l.done
		if err := l.Flush(ctx); err != nil {
			for _, s := range l.rej.take(l.interval) {
				l.log.Error("a refusal summary could not be recorded at shutdown", "source", s.Source,
					"count", s.Count, "first", s.First, "last", s.Last, "reasons", s.Reasons)
			}
			l.closeErr = err
		}
	})
	return l.closeErr
}

// Flush ends the current interval: it records one auth.rejected summary
// per source with refusals past its budget. Summaries that fail to record
// are kept, to be recorded with the next interval's.
func (l *Limiter) Flush(ctx context.Context) error {
	if l == nil {
		return nil
	}
	sums := l.rej.take(l.interval)
	var errs []error
	for i, s := range sums {
		data, err := json.Marshal(s)
		if err == nil {
			_, err = l.rec.Append(ctx, ledger.Event{Type: ledger.TypeAuthRejected, Time: l.now().UTC(), Data: data})
		}
		if err != nil {
			l.stats.summaryFailures.Add(1)
			l.rej.restore(sums[i:])
			errs = append(errs, err)
			break
		}
		l.stats.summaries.Add(1)
	}
	return errors.Join(errs...)
}

// Admit takes a token from principal's bucket. When there is none it
// answers 429 and reports false; the handler must then stop.
func (l *Limiter) Admit(w http.ResponseWriter, r *http.Request, principal string) bool {
	if l == nil {
		return true
	}
	ok, wait := l.principal.take(principal, l.now())
	if !ok {
		l.stats.limitedPrincipal.Add(1)
		refuse(w, r, wait, "too many requests from "+principal)
	}
	return ok
}

// Reject accounts for a refused request and records it with write (nil:
// not recordable, only accounted), unless it is not to be recorded one by
// one: a request that presented no credential (reason NoCredentials) is
// only counted; a refused credential charges its source's failed bucket
// and is recorded while the source is within its budget for the interval,
// else counted into the source's summary. The refusal stands whatever
// happens here; a failed record is counted, logged and folded into the
// summary, and its error returned for callers that answer it.
func (l *Limiter) Reject(ctx context.Context, reason string, write func(context.Context) error) error {
	if l == nil {
		if write == nil {
			return nil
		}
		return write(ctx)
	}
	if reason == NoCredentials {
		l.stats.noCredentials.Add(1)
		return nil
	}
	src, now := SourceFrom(ctx), l.now()
	l.failed.take(src, now)
	if write == nil {
		return nil
	}
	if !l.rej.admit(src) {
		l.rej.fold(src, reason, now, false)
		l.stats.summarized.Add(1)
		return nil
	}
	if err := write(ctx); err != nil {
		l.stats.recordFailures.Add(1)
		l.rej.fold(src, reason, now, true)
		l.log.ErrorContext(ctx, "recording auth.rejected failed; the refusal stands and is counted in its source's summary",
			"reason", reason, "source", src, "err", err)
		return err
	}
	l.stats.recorded.Add(1)
	return nil
}

// counters are the limiter's running totals.
type counters struct {
	noCredentials, limitedUnauth, limitedFailed, limitedPrincipal atomic.Int64
	recorded, summarized, recordFailures                          atomic.Int64
	summaries, summaryFailures                                    atomic.Int64
}

// Counters are the totals since start.
type Counters struct {
	// NoCredentials: refusals of requests that presented no credential
	// (counted, not recorded).
	NoCredentials int64 `json:"no_credentials"`
	// Limited*: requests answered 429, by bucket class.
	LimitedUnauthenticated int64 `json:"limited_unauthenticated"`
	LimitedFailed          int64 `json:"limited_failed"`
	LimitedPrincipal       int64 `json:"limited_principal"`
	// Refused credentials recorded one by one, counted into summaries,
	// and whose record failed (counted into summaries instead).
	Recorded       int64 `json:"rejections_recorded"`
	Summarized     int64 `json:"rejections_summarized"`
	RecordFailures int64 `json:"record_failures"`
	// Summary events recorded, and attempts that failed (kept for later).
	Summaries       int64 `json:"summaries"`
	SummaryFailures int64 `json:"summary_failures"`
}

// Stats are the counters and the memory the limiter holds.
type Stats struct {
	Counters
	// Keys tracked per bucket class, and sources counted this interval.
	Keys struct {
		Unauthenticated int `json:"unauthenticated"`
		Failed          int `json:"failed"`
		Principal       int `json:"principal"`
		Sources         int `json:"rejection_sources"`
	} `json:"keys"`
}

// Stats returns the counters and sizes now.
func (l *Limiter) Stats() Stats {
	var s Stats
	if l == nil {
		return s
	}
	c := &l.stats
	s.Counters = Counters{
		NoCredentials: c.noCredentials.Load(), LimitedUnauthenticated: c.limitedUnauth.Load(),
		LimitedFailed: c.limitedFailed.Load(), LimitedPrincipal: c.limitedPrincipal.Load(),
		Recorded: c.recorded.Load(), Summarized: c.summarized.Load(), RecordFailures: c.recordFailures.Load(),
		Summaries: c.summaries.Load(), SummaryFailures: c.summaryFailures.Load(),
	}
	s.Keys.Unauthenticated, s.Keys.Failed, s.Keys.Principal = l.unauth.size(), l.failed.size(), l.principal.size()
	s.Keys.Sources = l.rej.sources()
	return s
}
