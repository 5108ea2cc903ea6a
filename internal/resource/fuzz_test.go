package resource_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/resource"
)

var seeds = []string{
	"", "*", "**", "r", "kb://public/*", "kb://public/faq", "kb://public/../private/secret",
	"kb://public/%2e%2e/private/x", "kb://public/x?x=../..", "KB://Public/%7e%41", "kb://public/a%2Fb",
	"kb://public/*?*", "mcp://s/resources/file:///etc/*", "kb://h%c3%a9/x#f", "a:b/./c", "kb://public/.%2E/x",
	"kb://public/caf\u00e9", "kb://public/a%252e%252e", "kb://[::1]/x", "kb://u@H/x?a=.;b=..", "*://*/*",
}

// FuzzNormalize: a normal form normalizes to itself, is ASCII, and holds
// no dot segment, encoded slash or backslash, lower-case hex or encoded
// unreserved character; a pattern's too.
func FuzzNormalize(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, norm := range []func(string) (string, error){resource.Normalize, resource.NormalizePattern} {
			n, err := norm(s)
			if err != nil {
				continue
			}
			if again, err := norm(n); err != nil || again != n {
				t.Fatalf("normal form %q of %q normalizes to %q, %v", n, s, again, err)
			}
			checkNormal(t, s, n)
		}
		if n, err := resource.NormalizePath(s); err == nil {
			if again, err := resource.NormalizePath(n); err != nil || again != n {
				t.Fatalf("normal path %q of %q normalizes to %q, %v", n, s, again, err)
			}
			if strings.ContainsAny(n, "?#") {
				t.Fatalf("normal path %q of %q holds a query or fragment", n, s)
			}
			checkBytes(t, s, n)
			checkSegments(t, s, n, "", "")
		}
	})
}

func checkNormal(t *testing.T, in, n string) {
	t.Helper()
	checkBytes(t, in, n)
	_, _, path, query, frag := split(n)
	checkSegments(t, in, path, query, frag)
}

func checkBytes(t *testing.T, in, n string) {
	t.Helper()
	for i := 0; i < len(n); i++ {
		if n[i] < 0x21 || n[i] >= 0x7f || n[i] == '\\' {
			t.Fatalf("normal form %q of %q holds byte %#x", n, in, n[i])
		}
		if n[i] == '%' {
			v := strings.ToUpper(n[i+1 : i+3])
			if v != n[i+1:i+3] || v == "2F" || v == "5C" || unreservedHex(v) {
				t.Fatalf("normal form %q of %q holds %%%s", n, in, n[i+1:i+3])
			}
		}
	}
}

func checkSegments(t *testing.T, in, path, query, frag string) {
	t.Helper()
	for _, seg := range strings.Split(path, "/") {
		if seg, _, _ = strings.Cut(seg, ";"); seg == "." || seg == ".." {
			t.Fatalf("the normal form of %q has the dot segment %q in its path", in, seg)
		}
	}
	for _, part := range []string{query, frag} {
		for _, seg := range strings.FieldsFunc(part, func(r rune) bool { return strings.ContainsRune("/?&=;", r) }) {
			if seg == "." || seg == ".." {
				t.Fatalf("the normal form of %q has the dot segment %q after its path", in, seg)
			}
		}
	}
}

func unreservedHex(v string) bool {
	b := unhex(v)
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("-._~", b) >= 0
}

// FuzzMatchNeverWidens matches random patterns against random resources
// after normalization. Match agrees with a regular expression written from
// the documented rule; and when it matches, the resource as a server
// would resolve its raw text (every percent-encoding decoded, then RFC
// 3986 remove_dot_segments) still lies under the directory the pattern
// names before its first wildcard, with no query or fragment the pattern
// does not allow.
func FuzzMatchNeverWidens(f *testing.F) {
	for _, p := range seeds {
		for _, u := range seeds {
			f.Add(p, u)
		}
	}
	f.Fuzz(func(t *testing.T, pattern, uri string) {
		if len(pattern)+len(uri) > 400 {
			return
		}
		np, err := resource.NormalizePattern(pattern)
		if err != nil {
			return
		}
		nu, err := resource.Normalize(uri)
		if err != nil {
			return
		}
		got := resource.Match(np, nu)
		if want := reference(np).MatchString(nu); got != want {
			t.Fatalf("Match(%q, %q) = %v; the documented rule says %v", np, nu, got, want)
		}
		if !got || strings.Trim(np, "*") == "" {
			return
		}
		lit := np
		if i := strings.IndexAny(np, "*?#"); i >= 0 {
			lit = np[:i]
		}
		rawScheme, rawAuth, rawPath, rawQuery, rawFrag := split(uri)
		resolved := asciiLower(rawScheme) + asciiLower(decode(rawAuth)) + removeDotSegments(decode(rawPath))
		if _, auth, p, _, _ := split(lit); auth != "" || strings.Contains(p, "/") {
			dir := lit[:strings.LastIndexByte(lit, '/')+1]
			if s, a, _, _, _ := split(dir); len(dir) > len(s)+len(a) && !strings.HasPrefix(resolved, decode(dir)) {
				t.Fatalf("Match(%q, %q): the raw %q resolves to %q, outside %q", np, nu, uri, resolved, decode(dir))
			}
		}
		if !strings.Contains(np, "?") && rawQuery != "" || !strings.Contains(np, "#") && rawFrag != "" {
			t.Fatalf("Match(%q, %q): the raw %q has a query or fragment the pattern does not name", np, nu, uri)
		}
		for _, part := range []string{decode(rawQuery), decode(rawFrag)} {
			for _, seg := range strings.FieldsFunc(part, func(r rune) bool { return strings.ContainsRune("/?&=;", r) }) {
				if seg == "." || seg == ".." {
					t.Fatalf("Match(%q, %q): the raw %q climbs with %q after its path", np, nu, uri, seg)
				}
			}
		}
	})
}

// FuzzCovers: when outer covers inner, every resource inner matches, outer
// matches too.
func FuzzCovers(f *testing.F) {
	f.Add("kb://public/*", "kb://public/faq/*", "kb://public/faq/1")
	f.Add("*", "**", "kb://x?y")
	f.Add("**", "*", "kb://x?y")
	f.Add("kb://*", "kb://a*?*", "kb://ab?c")
	f.Fuzz(func(t *testing.T, outer, inner, uri string) {
		if len(outer)+len(inner)+len(uri) > 300 {
			return
		}
		no, err1 := resource.NormalizePattern(outer)
		ni, err2 := resource.NormalizePattern(inner)
		nu, err3 := resource.Normalize(uri)
		if err1 != nil || err2 != nil || err3 != nil {
			return
		}
		if resource.Covers(no, ni) && resource.Match(ni, nu) && !resource.Match(no, nu) {
			t.Fatalf("%q covers %q, which matches %q; %q does not", no, ni, nu, no)
		}
	})
}

// reference is the documented rule as a regular expression.
func reference(pattern string) *regexp.Regexp {
	if strings.Trim(pattern, "*") == "" && pattern != "" {
		return regexp.MustCompile(`(?s)^.*$`)
	}
	parts := strings.Split(pattern, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`(?s)^` + strings.Join(parts, `[^?#]*`) + `$`)
}

// split is RFC 3986 appendix B: scheme (with its ':'), authority (with its
// "//"), path, query and fragment (without their delimiters).
func split(s string) (scheme, authority, path, query, fragment string) {
	if i := strings.IndexAny(s, ":/?#"); i > 0 && s[i] == ':' {
		scheme, s = s[:i+1], s[i+1:]
	}
	if strings.HasPrefix(s, "//") {
		i := strings.IndexAny(s[2:], "/?#")
		if i < 0 {
			i = len(s) - 2
		}
		authority, s = s[:i+2], s[i+2:]
	}
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s, fragment = s[:i], s[i+1:]
	}
	if i := strings.IndexByte(s, '?'); i >= 0 {
		s, query = s[:i], s[i+1:]
	}
	return scheme, authority, s, query, fragment
}

// decode decodes every well-formed percent-encoding, as a lenient server
// would.
func decode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1 : i+3]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeDotSegments is RFC 3986 §5.2.4, step by step.
func removeDotSegments(in string) string {
	var out string
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			out = out[:max(strings.LastIndexByte(out, '/'), 0)]
		case in == "/..":
			in = "/"
			out = out[:max(strings.LastIndexByte(out, '/'), 0)]
		case in == "." || in == "..":
			in = ""
		default:
			i := strings.IndexByte(in[1:], '/')
			if i < 0 {
				out, in = out+in, ""
			} else {
				out, in = out+in[:i+1], in[i+1:]
			}
		}
	}
	return out
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

func unhex(v string) byte {
	var n byte
	for i := 0; i < 2; i++ {
		c := v[i]
		switch {
		case c <= '9':
			n = n<<4 | (c - '0')
		case c <= 'F':
			n = n<<4 | (c - 'A' + 10)
		default:
			n = n<<4 | (c - 'a' + 10)
		}
	}
	return n
}
