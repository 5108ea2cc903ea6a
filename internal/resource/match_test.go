package resource_test

import (
	"testing"

	"github.com/writhq/writ/internal/resource"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, uri string
		want         bool
	}{
		{"kb://public/*", "kb://public/faq", true},
		{"kb://public/*", "kb://public/a/b", true},
		{"kb://public/*", "kb://public/", true},
		{"kb://public/*", "kb://private/x", false},
		{"kb://public/*", "kb://public/a?x=1", false},
		{"kb://public/*", "kb://public/a#f", false},
		{"kb://public/*", "kb://public?x=/public/", false},
		{"kb://public/*?*", "kb://public/a?x=1", true},
		{"kb://public/*?*", "kb://public/a?x=1?y", false},
		{"kb://public/*?*", "kb://public/a", false},
		{"kb://public/*#*", "kb://public/a#f", true},
		{"kb://public/a?x=*", "kb://public/a?x=1", true},
		{"kb://public/a?x=*", "kb://public/a?x=1#f", false},
		{"*", "", true},
		{"*", "kb://public/a?x=1#f", true},
		{"**", "kb://public/a?x=1", true},
		{"*?*", "kb://public/a?x=1", true},
		{"*?*", "kb://public/a", false},
		{"", "", true},
		{"", "x", false},
		{"kb://public/a", "kb://public/a", true},
		{"kb://public/a", "kb://public/ab", false},
	}
	for _, tt := range tests {
		if got := resource.Match(tt.pattern, tt.uri); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.uri, got, tt.want)
		}
	}
}

// TestMatchAnyIssueExamples: none of the resources the issue reports as
// reaching outside kb://public/* does so.
func TestMatchAnyIssueExamples(t *testing.T) {
	scope := []string{"kb://public/*"}
	for _, uri := range []string{
		"kb://public/../private/secret",
		"kb://public/%2e%2e/private/x",
		"kb://public/x?x=../..",
		"kb://public/?x=../..",
		"kb://public/a%2F..%2F..%2Fprivate",
	} {
		if resource.MatchAny(scope, uri) {
			t.Errorf("MatchAny(%q, %q) = true, want false", scope, uri)
		}
	}
	if !resource.MatchAny(scope, "KB://Public/faq") {
		t.Errorf("MatchAny(%q, KB://Public/faq) = false, want true", scope)
	}
	if !resource.MatchAny([]string{"KB://PUBLIC/%7E*"}, "kb://public/~x") {
		t.Errorf("a pattern is normalized before it matches")
	}
}

func TestWithin(t *testing.T) {
	parent := []string{"kb://public/*"}
	tests := []struct {
		child []string
		want  bool
	}{
		{[]string{"kb://public/*"}, true},
		{[]string{"kb://public/faq/*"}, true},
		{[]string{"KB://PUBLIC/faq"}, true},
		{[]string{"kb://public/../private/*"}, false},
		{[]string{"kb://public/%2e%2e/private/*"}, false},
		{[]string{"kb://public/x?*"}, false},
		{[]string{"*"}, false},
		{[]string{"kb://public*"}, false},
	}
	for _, tt := range tests {
		if got := resource.Within(tt.child, parent); got != tt.want {
			t.Errorf("Within(%q, %q) = %v, want %v", tt.child, parent, got, tt.want)
		}
	}
	if !resource.Within([]string{"*"}, []string{"**"}) || resource.Within([]string{"*"}, []string{"*?*"}) {
		t.Error("a pattern of stars alone is covered by another and by nothing else")
	}
	if resource.Within([]string{"kb://a/*"}, []string{"kb://%zz/*", "kb://a/../*"}) {
		t.Error("an outer pattern with no normal form covers nothing")
	}
}
