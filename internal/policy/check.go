package policy

import (
	"context"
	"fmt"
	"strings"

	"github.com/cedar-policy/cedar-go"
)

// Check compiles src as it would be loaded and lints it: for Rego, OPA's
// strict mode over the policies and their tests (unused variables and
// imports, deprecated built-ins, shadowed names); for Cedar, parsing,
// validation against the bundle's .cedarschema when there is one, and the
// annotations writ reads. It returns warnings that do not stop a load, and
// an error wrapping ErrCompile for anything that would.
func Check(ctx context.Context, src Sources) ([]string, error) {
	if _, err := Compile(ctx, src); err != nil {
		return nil, err
	}
	switch src.Engine {
	case EngineRego:
		return nil, checkRegoStrict(ctx, src)
	case EngineCedar:
		return cedarWarnings(src), nil
	}
	return nil, nil
}

func checkRegoStrict(ctx context.Context, src Sources) error {
	if _, err := compileRego(ctx, src, true); err != nil {
		return fmt.Errorf("%w: strict mode: %w", ErrCompile, err)
	}
	mods, err := regoModules(src, true)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCompile, err)
	}
	c := newRegoTestCompiler(true)
	if c.Compile(mods); c.Failed() {
		return fmt.Errorf("%w: strict mode: %w", ErrCompile, c.Errors)
	}
	return nil
}

func cedarWarnings(src Sources) []string {
	var warns []string
	hasSchema := false
	for _, f := range src.Files {
		if strings.HasSuffix(f.Path, cedarSchemaSuffix) {
			hasSchema = true
		}
	}
	if !hasSchema {
		warns = append(warns, "no "+cedarSchemaSuffix+" file: policies are parsed but not type-checked")
	}
	for _, f := range src.Files {
		if !strings.HasSuffix(f.Path, ".cedar") {
			continue
		}
		list, err := cedar.NewPolicyListFromBytes(f.Path, f.Data)
		if err != nil {
			continue // Compile already reported it
		}
		for i, p := range list {
			ann := p.Annotations()
			where := fmt.Sprintf("%s:%d", f.Path, p.Position().Line)
			if ann[annID] == "" {
				warns = append(warns, fmt.Sprintf("%s: policy has no @id; it is reported as %s#%d", where, f.Path, i))
			}
			if p.Effect() == cedar.Forbid && ann[annReason] == "" {
				warns = append(warns, fmt.Sprintf("%s: forbid has no @reason; denials will say only its id", where))
			}
			for k := range ann {
				switch k {
				case annID, annReason, annEffect, annMaxTTL, annApprovals, annRedact, annRecordOutput, annRequireBind:
				default:
					warns = append(warns, fmt.Sprintf("%s: annotation @%s is not one writ reads", where, k))
				}
			}
		}
	}
	return warns
}
