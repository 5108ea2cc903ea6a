package policy

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Engine is a compiled bundle. Eval must be safe for concurrent use and must
// not keep in after it returns. An error is turned into a deny by the caller.
type Engine interface {
	Eval(ctx context.Context, in *Input) (Result, error)
}

// Compile compiles src with the engine it names. The error wraps ErrCompile
// and says which file and line failed.
func Compile(ctx context.Context, src Sources) (Engine, error) {
	var (
		e   Engine
		err error
	)
	switch src.Engine {
	case EngineRego:
		e, err = compileRego(ctx, src, false)
	case EngineCedar:
		e, err = compileCedar(src)
	default:
		err = fmt.Errorf("unknown engine %q: want rego or cedar", src.Engine)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCompile, err)
	}
	return e, nil
}

// parseTTL reads a max_ttl obligation: a Go duration ("1h", "15m") or a whole
// number of seconds ("3600").
func parseTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 || n > 1<<32 {
			return 0, fmt.Errorf("max_ttl %q: out of range", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("max_ttl %q: want a positive duration such as 15m or a number of seconds", s)
	}
	return d, nil
}

// mergeObligations folds o into the accumulated obligations acc: the
// smallest TTL cap, the largest number of approvals, the union of
// redactions, record_output true if any policy asks to record, and
// require_binding if any policy requires it.
func mergeObligations(acc *Obligations, o Obligations) {
	if o.MaxTTL > 0 && (acc.MaxTTL == 0 || o.MaxTTL < acc.MaxTTL) {
		acc.MaxTTL = o.MaxTTL
		acc.MaxTTLSeconds = int64((o.MaxTTL + time.Second - 1) / time.Second)
	}
	acc.Approvals = max(acc.Approvals, o.Approvals)
	for _, r := range o.Redact {
		if !slices.Contains(acc.Redact, r) {
			acc.Redact = append(acc.Redact, r)
		}
	}
	acc.RequireBinding = acc.RequireBinding || o.RequireBinding
	if o.RecordOutput != nil && (acc.RecordOutput == nil || *o.RecordOutput) {
		v := *o.RecordOutput
		acc.RecordOutput = &v
	}
}

// normalize sorts and de-duplicates the lists of r so that two engines'
// answers compare equal, and never leaves them nil.
func (r *Result) normalize() {
	r.Reasons = sortedSet(r.Reasons)
	r.PolicyIDs = sortedSet(r.PolicyIDs)
	slices.Sort(r.Obligations.Redact)
	if r.Obligations.MaxTTL > 0 {
		r.Obligations.MaxTTLSeconds = int64((r.Obligations.MaxTTL + time.Second - 1) / time.Second)
	}
}

func sortedSet(s []string) []string {
	if s == nil {
		return []string{}
	}
	slices.Sort(s)
	return slices.Compact(s)
}
