package proxy_test

import (
	"strings"
	"testing"

	"github.com/writhq/writ/internal/proxy"
)

// FuzzExpand: a resource template expands without panicking, every
// wildcard is replaced, and text outside braces is kept.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"https://x/{owner}/{repo}", "{path...}", "{", "}{", "{{a}}", "", "no wildcards", "{a}{b}{"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tmpl string) {
		got := proxy.Expand(tmpl, func(string) string { return "V" })
		if !strings.Contains(tmpl, "{") && got != tmpl {
			t.Errorf("Expand(%q) = %q: want it unchanged", tmpl, got)
		}
		if strings.Count(got, "V") < strings.Count(tmpl, "V") {
			t.Errorf("Expand(%q) = %q lost text", tmpl, got)
		}
	})
}
