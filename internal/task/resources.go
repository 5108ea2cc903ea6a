package task

import (
	"github.com/writhq/writ/internal/resource"
)

// MaxResourceBytes bounds the resource of one call, in its normal form.
const MaxResourceBytes = 4096

// normalizeScopeResources returns scope with its resource patterns in
// normal form (package resource), which is what writ records, hashes,
// shows the approver and enforces. A pattern that has no normal form is
// refused, named.
func normalizeScopeResources(scope Scope) (Scope, error) {
	out := make([]string, len(scope.Resources))
	for i, p := range scope.Resources {
		n, err := resource.NormalizePattern(p)
		if err != nil {
			return Scope{}, invalid("scope.resources pattern %q %v", p, err)
		}
		if len(n) > MaxPatternBytes {
			return Scope{}, invalid("scope.resources pattern %q is longer than %d bytes in normal form", p, MaxPatternBytes)
		}
		out[i] = n
	}
	scope.Resources = out
	return scope, nil
}

// normalizeResource returns the resource of a call in normal form, which
// is what policy decides on and the ledger records; a resource that has
// none is refused.
func normalizeResource(uri string) (string, error) {
	n, err := resource.Normalize(uri)
	if err != nil {
		return "", invalid("resource %q %v", uri, err)
	}
	if len(n) > MaxResourceBytes {
		return "", invalid("resource is longer than %d bytes in normal form", MaxResourceBytes)
	}
	return n, nil
}
