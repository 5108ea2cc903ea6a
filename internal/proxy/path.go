package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/resource"
)

// requestPath returns the path of r below /proxy/<upstream>, in normal
// form (resource.NormalizePath) as it is forwarded, and decoded as rules
// match it. A path that has no normal form, or holds an empty segment, is
// refused rather than forwarded: the upstream must be sent the path that
// was decided, not one it may resolve ("..", "%2e%2e") or split ("%2F")
// differently.
func requestPath(r *http.Request) (escaped, decoded string, err error) {
	// The escaped path is /proxy/<upstream>/<rest>.
	rest := r.URL.EscapedPath()
	for range 3 {
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return "", "", errors.New("is not below /proxy/<upstream>/")
		}
		rest = rest[i+1:]
	}
	escaped, err = resource.NormalizePath("/" + rest)
	if err != nil {
		return "", "", err
	}
	if strings.Contains(escaped, "//") {
		return "", "", errors.New("holds an empty segment")
	}
	decoded, err = url.PathUnescape(escaped)
	if err != nil {
		return "", "", err
	}
	return escaped, decoded, nil
}

// pathValues returns the wildcards of r's rule as they fill a resource
// template: percent-encoded as they stand in the path, so that a value
// cannot add a query, a fragment or an encoding to the resource.
func pathValues(r *http.Request) func(string) string {
	return func(name string) string { return resource.EscapePath(r.PathValue(name)) }
}

// checkRuleResource refuses a rule whose resource template cannot make a
// resource with a normal form.
func checkRuleResource(upstream string, i int, rule config.ProxyRule) error {
	if _, err := resource.Normalize(Expand(rule.Resource, func(string) string { return "x" })); err != nil {
		return fmt.Errorf("proxy.upstreams.%s.rules[%d].resource %q %v", upstream, i, rule.Resource, err)
	}
	return nil
}
