package policy

import (
	"context"
	"fmt"
	"time"
)

// Replay decides point and in again against the exact sources of version,
// read from store. The decision carries a fresh ID; its PolicyVersion is
// version. Evaluation failures are a deny, as in Evaluate; only a missing or
// uncompilable version is an error (wrapping ErrNotFound or ErrCompile).
func Replay(ctx context.Context, store SourceStore, version string, point Point, in *Input, timeout time.Duration) (Decision, error) {
	src, err := store.Get(ctx, version)
	if err != nil {
		return Decision{}, err
	}
	eng, err := Compile(ctx, src)
	if err != nil {
		return Decision{}, fmt.Errorf("replaying %s: %w", version, err)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return decideOnce(ctx, &loaded{engine: eng, version: version, name: src.Engine}, point, in, timeout), nil
}

// EvaluateSources compiles src and decides once: the CLI's `policy eval`.
func EvaluateSources(ctx context.Context, src Sources, point Point, in *Input, timeout time.Duration) (Decision, error) {
	b, err := CompileBundle(ctx, src, timeout)
	if err != nil {
		return Decision{}, err
	}
	return b.Decide(ctx, point, in), nil
}

// Bundle is a compiled bundle decided on directly, outside a Policy: a
// candidate tried on recorded decisions (`writ policy what-if`). Nothing
// it decides is recorded.
type Bundle struct {
	l       *loaded
	timeout time.Duration
}

// CompileBundle compiles src; timeout bounds each decision (0: the
// default). The error wraps ErrCompile.
func CompileBundle(ctx context.Context, src Sources, timeout time.Duration) (*Bundle, error) {
	eng, err := Compile(ctx, src)
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Bundle{l: &loaded{engine: eng, version: Version(src), name: src.Engine}, timeout: timeout}, nil
}

// Version returns the bundle's version.
func (b *Bundle) Version() string { return b.l.version }

// Engine returns the bundle's engine name.
func (b *Bundle) Engine() string { return b.l.name }

// Decide decides point and in, failing closed as Evaluate does.
func (b *Bundle) Decide(ctx context.Context, point Point, in *Input) Decision {
	return decideOnce(ctx, b.l, point, in, b.timeout)
}

func decideOnce(ctx context.Context, l *loaded, point Point, in *Input, timeout time.Duration) Decision {
	d := Decision{ID: NewDecisionID(), Point: point, PolicyVersion: l.version, Engine: l.name}
	x, err := prepare(point, in)
	if err != nil {
		d.Result = policyError("%v", err)
		return d
	}
	d.Result = evalOne(ctx, timeout, l, x)
	return d
}
