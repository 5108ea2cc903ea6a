package policy

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
)

// Defaults.
const (
	DefaultTimeout  = 50 * time.Millisecond
	DefaultDebounce = 250 * time.Millisecond
)

// Config says which bundle to load and where to record what happens.
type Config struct {
	// Dir is the bundle directory; empty means the embedded default pack.
	Dir string
	// Engine is "rego" or "cedar"; empty means detect it from Dir's files
	// (and Rego for the default pack).
	Engine string
	// Timeout bounds one evaluation (default 50ms); past it the answer is deny.
	Timeout time.Duration
	// Recorder receives policy.loaded, policy.rejected and
	// policy.shadow_disagreed events. Nil records nothing (one-shot tools).
	Recorder ledger.Recorder
	// Sources keeps every version's sources; nil keeps them in memory only.
	Sources SourceStore
	// Logger is the operational log; nil discards.
	Logger *slog.Logger
	// ShadowDir, when set, is a candidate bundle evaluated beside the active
	// one and never enforced. ShadowEngine names its engine as Engine does.
	ShadowDir    string
	ShadowEngine string
	// Debounce is how long Watch waits for file changes to settle (default 250ms).
	Debounce time.Duration
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	for _, e := range []string{c.Engine, c.ShadowEngine} {
		switch e {
		case "", EngineRego, EngineCedar:
		default:
			return fmt.Errorf("policy engine %q: want rego or cedar", e)
		}
	}
	if c.Timeout < 0 || c.Debounce < 0 {
		return errors.New("policy timeout and debounce must not be negative")
	}
	return nil
}

// loaded is one compiled bundle and what identifies it.
type loaded struct {
	engine  Engine
	version string
	name    string // engine name
	source  string // directory, or "embedded:<engine>"
	files   []event.PolicyFile
}

// Policy is the active policy: safe for concurrent Evaluate calls while a
// Reload swaps the bundle underneath.
type Policy struct {
	cfg     Config
	log     *slog.Logger
	sources SourceStore

	mu     sync.Mutex // serializes loads
	active atomic.Pointer[loaded]
	shadow atomic.Pointer[loaded]

	shadowQ   chan ledger.Event
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	isClosed  atomic.Bool
}

// New loads, compiles and records the configured bundle (and the shadow
// bundle, if any). A bundle that fails to load is an error wrapping
// ErrCompile; a shadow bundle that fails is an error too, so a typo in the
// candidate is seen at start rather than silently ignored.
func New(ctx context.Context, cfg Config) (*Policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = DefaultDebounce
	}
	p := &Policy{
		cfg:     cfg,
		log:     cfg.Logger,
		sources: cfg.Sources,
		shadowQ: make(chan ledger.Event, 256),
		closed:  make(chan struct{}),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.sources == nil {
		p.sources = NewMemStore()
	}
	if err := p.Reload(ctx); err != nil {
		return nil, err
	}
	p.wg.Add(1)
	go p.shadowWorker()
	return p, nil
}

// Version returns the active bundle's version, "sha256:<hex>".
func (p *Policy) Version() string { return p.active.Load().version }

// Engine returns the active bundle's engine name.
func (p *Policy) Engine() string { return p.active.Load().name }

// ShadowVersion returns the candidate bundle's version, or "" without one.
func (p *Policy) ShadowVersion() string {
	if s := p.shadow.Load(); s != nil {
		return s.version
	}
	return ""
}

// Evaluate decides one request. It never fails and never panics: an engine
// error, a timeout, an undefined result or a panic is a deny whose reason
// starts "policy error:". in is not modified; Evaluate computes its own
// Version, Point and Derived fields.
func (p *Policy) Evaluate(ctx context.Context, point Point, in *Input) Decision {
	d := Decision{ID: NewDecisionID(), Point: point}
	l := p.active.Load()
	d.PolicyVersion, d.Engine = l.version, l.name
	if p.isClosed.Load() {
		d.Result = policyError("%v", ErrClosed)
		return d
	}
	x, err := prepare(point, in)
	if err != nil {
		d.Result = policyError("%v", err)
		return d
	}
	d.Result = p.evalOne(ctx, l, x)
	if d.Effect == Deny && isPolicyError(d.Result) {
		p.log.WarnContext(ctx, "policy evaluation failed closed",
			logDecisionID, d.ID, logPoint, string(point), logVersion, l.version, logReason, d.Reasons[0])
	}
	if s := p.shadow.Load(); s != nil {
		d.Shadow = p.evalShadow(ctx, s, x, &d)
	}
	return d
}

// Log keys.
const (
	logDecisionID = "decision_id"
	logPoint      = "point"
	logVersion    = "policy_version"
	logReason     = "reason"
	logEngine     = "engine"
	logSource     = "source"
	logErr        = "error"
)

// Document returns the input document for point exactly as the engines see
// it: a copy of in with Version, Point and the derived facts filled in. Record
// this, not the caller's partial input, so the evidence shows what decided.
func Document(point Point, in *Input) (*Input, error) { return prepare(point, in) }

// prepare copies in and fills the fields writ owns.
func prepare(point Point, in *Input) (*Input, error) {
	if in == nil {
		return nil, errors.New("no input document")
	}
	if _, err := ParsePoint(string(point)); err != nil {
		return nil, err
	}
	x := *in
	x.Version = InputVersion
	x.Point = point
	x.Derived = derive(&x)
	return &x, nil
}

func isPolicyError(r Result) bool {
	return len(r.Reasons) == 1 && len(r.Reasons[0]) > 13 && r.Reasons[0][:13] == "policy error:"
}

// evalOne evaluates with the timeout, turning every failure into a deny.
func evalOne(ctx context.Context, timeout time.Duration, l *loaded, in *Input) (r Result) {
	defer func() {
		if v := recover(); v != nil {
			r = policyError("%s engine panicked: %v", l.name, v)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	r, err := l.engine.Eval(ctx, in)
	switch {
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return policyError("evaluation exceeded the %s timeout", timeout)
	case err != nil && ctx.Err() != nil:
		return policyError("evaluation canceled: %v", context.Cause(ctx))
	case err != nil:
		return policyError("%v", err)
	case time.Since(start) > timeout:
		return policyError("evaluation exceeded the %s timeout", timeout)
	}
	return r
}

func (p *Policy) evalOne(ctx context.Context, l *loaded, in *Input) Result {
	return evalOne(ctx, p.cfg.Timeout, l, in)
}

// Close stops watching and flushes pending shadow events. Evaluate after
// Close denies.
func (p *Policy) Close() error {
	p.closeOnce.Do(func() {
		p.isClosed.Store(true)
		close(p.closed)
	})
	p.wg.Wait()
	return nil
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewDecisionID returns "dec_" and 26 lowercase base32 characters of 128
// random bits.
func NewDecisionID() string {
	var b [16]byte
	rand.Read(b[:])
	var out [4 + 26]byte
	copy(out[:], "dec_")
	idEncoding.Encode(out[4:], b[:])
	for i := 4; i < len(out); i++ {
		if out[i] >= 'A' && out[i] <= 'Z' {
			out[i] += 'a' - 'A'
		}
	}
	return string(out[:])
}
