package proxy_test

import (
	"strings"
	"testing"

	"github.com/writhq/writ/internal/proxy"
)

// FuzzExpand: a resource template expands without panicking; text
// without braces is kept as it is; wildcard names never hold a brace; and
// wildcards only ever shrink to what they are replaced with.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"https://x/{owner}/{repo}", "{path...}", "{", "}{", "{{a}}", "", "no wildcards", "{a}{b}{", "{VV}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tmpl string) {
		got := proxy.Expand(tmpl, func(name string) string {
			if strings.ContainsAny(name, "}") {
				t.Errorf("Expand(%q) asked for wildcard %q", tmpl, name)
			}
			return ""
		})
		if !strings.Contains(tmpl, "{") && got != tmpl {
			t.Errorf("Expand(%q) = %q: want it unchanged", tmpl, got)
		}
		if len(got) > len(tmpl) {
			t.Errorf("Expand(%q) = %q grew with empty values", tmpl, got)
		}
	})
}
