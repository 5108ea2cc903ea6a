package resource_test

import (
	"strings"
	"testing"

	"github.com/writhq/writ/internal/resource"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"r", "r"},
		{"erp://invoices/2026-Q3/17", "erp://invoices/2026-Q3/17"},
		{"ERP://Invoices.Example/2026-Q3/17", "erp://invoices.example/2026-Q3/17"},
		{"kb://public/%7euser/%41", "kb://public/~user/A"},
		{"kb://public/a%3fb", "kb://public/a%3Fb"},
		{"kb://public/a%2a", "kb://public/a%2A"},
		{"kb://User@HOST:8080/P", "kb://User@host:8080/P"},
		{"kb://H%c3%89/x", "kb://h%C3%89/x"},
		{"kb://public/café", "kb://public/caf%C3%A9"},
		{"kb://public/a?x=1&y=2#top", "kb://public/a?x=1&y=2#top"},
		{"kb://public/a?x=1.2&y=..z", "kb://public/a?x=1.2&y=..z"},
		{"mailto:x@example.org", "mailto:x@example.org"},
		{"repo:acme/api", "repo:acme/api"},
		{"file:///etc/hosts", "file:///etc/hosts"},
		{"mcp://s/resources/https://x/a?q=1", "mcp://s/resources/https://x/a?q=1"},
		{"kb://[2001:DB8::1]/x", "kb://[2001:db8::1]/x"},
		{"kb://public/..x/x..", "kb://public/..x/x.."},
		{"kb://public//a", "kb://public//a"},
	}
	for _, tt := range tests {
		got, err := resource.Normalize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestNormalizeRefuses holds the examples of the issue that prompted the
// rules, and each other refusal.
func TestNormalizeRefuses(t *testing.T) {
	tests := []struct {
		in, why string
	}{
		{"kb://public/../private/secret", "dot segment"},
		{"kb://public/%2e%2e/private/x", "dot segment"},
		{"kb://public/%2E%2e/private/x", "dot segment"},
		{"kb://public/.%2e/private/x", "dot segment"},
		{"kb://public/x?x=../..", "dot segment"},
		{"kb://public/x?a=1&b=..", "dot segment"},
		{"kb://public/x#..", "dot segment"},
		{"kb://public/./x", "dot segment"},
		{"kb://public/x/..", "dot segment"},
		{"kb://public/x/.", "dot segment"},
		{"kb://public/..;x/private", "dot segment"},
		{"kb://public/.;/x", "dot segment"},
		{"..", "dot segment"},
		{"repo:acme/../x", "dot segment"},
		{"kb://public/a%2Fb", "encoded slash"},
		{"kb://public/a%2fb", "encoded slash"},
		{"kb://public/a?x=%2F", "encoded slash"},
		{"kb://public/a%5Cb", "encoded backslash"},
		{`kb://public/a\b`, "backslash"},
		{`kb://public\..\private`, "backslash"},
		{"kb://public/a\x00b", "control character"},
		{"kb://public/a%00b", "encoded control character"},
		{"kb://public/a%0ab", "encoded control character"},
		{"kb://public/a\u0085", "control character"},
		{"kb://public/a%", "two hex digits"},
		{"kb://public/a%4", "two hex digits"},
		{"kb://public/a%zz", "two hex digits"},
		{"kb://public/a b", "unencoded"},
		{"kb://public/a#b#c", "unencoded"},
		{"kb://public/[x]", "unencoded"},
		{"kb://pub lic/x", "unencoded"},
		{"1kb://public/x", "invalid scheme"},
		{"*://public/x", "invalid scheme"},
		{":x", "invalid scheme"},
		{"kb://public/\xff", "UTF-8"},
	}
	for _, tt := range tests {
		got, err := resource.Normalize(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("Normalize(%q) = %q, %v; want an error about %s", tt.in, got, err, tt.why)
		}
	}
}

func TestNormalizePath(t *testing.T) {
	for in, want := range map[string]string{"/": "/", "/repos/%41cme/x%3a": "/repos/Acme/x%3A", "/a;b/c..": "/a;b/c..", "": ""} {
		if got, err := resource.NormalizePath(in); err != nil || got != want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"/a/../b", "/a/%2e%2E/b", "/a%2fb", "/a?b", "/a#b", "/a/..;/b", "/a\\b", "/a%00"} {
		if got, err := resource.NormalizePath(in); err == nil {
			t.Errorf("NormalizePath(%q) = %q; want an error", in, got)
		}
	}
}

func TestNormalizePattern(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"*", "*"},
		{"**", "**"},
		{"*://public/*", "*://public/*"},
		{"KB://Public/*", "kb://public/*"},
		{"kb://public/%7e*", "kb://public/~*"},
		{"kb://public/*?*", "kb://public/*?*"},
		{"mcp://everything/*", "mcp://everything/*"},
	}
	for _, tt := range tests {
		got, err := resource.NormalizePattern(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizePattern(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, p := range []string{"kb://public/../private/*", "kb://public/%2e%2e/*", "kb://public/*%2F*", "kb://public/%*"} {
		if got, err := resource.NormalizePattern(p); err == nil {
			t.Errorf("NormalizePattern(%q) = %q; want an error", p, got)
		}
	}
}

func TestEscapePath(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"echo", "echo"},
		{"get_weather-v2.1", "get_weather-v2.1"},
		{"a/b", "a/b"},
		{"a?b#c", "a%3Fb%23c"},
		{"100%", "100%25"},
		{"a b", "a%20b"},
		{"é", "%C3%A9"},
		{"..", ".."},
	}
	for _, tt := range tests {
		if got := resource.EscapePath(tt.in); got != tt.want {
			t.Errorf("EscapePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// Escaped text normalizes to itself, unless it holds a dot segment or
	// a character no resource may hold.
	for _, name := range []string{"a?b", "x%2e%2e", "100%", "a/b"} {
		u := "mcp://s/tools/" + resource.EscapePath(name)
		if got, err := resource.Normalize(u); err != nil || got != u {
			t.Errorf("Normalize(%q) = %q, %v; want it unchanged", u, got, err)
		}
	}
	for _, name := range []string{"..", "../resources/x", "a/./b", `a\b`, "a\x00"} {
		u := "mcp://s/tools/" + resource.EscapePath(name)
		if got, err := resource.Normalize(u); err == nil {
			t.Errorf("Normalize(%q) = %q; want an error", u, got)
		}
	}
}

func BenchmarkNormalizeNormal(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := resource.Normalize("erp://invoices/2026-Q3/17"); err != nil {
			b.Fatal(err)
		}
	}
}
