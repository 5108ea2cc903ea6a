package proxy

import (
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
)

// FuzzRequestPath: a path writ accepts is in normal form, holds no dot or
// empty segment, decodes into exactly as many segments as it has (no
// encoded slash), is what Go's router and URL type keep as they are, and
// is exactly what would be forwarded.
func FuzzRequestPath(f *testing.F) {
	for _, s := range []string{"repos/acme/x/issues", "a/%2e%2e/b", "a/..;/b", "a%2Fb", "a%3Fb", "%41%7e", "a//b", "", "a/", "caf%C3%A9", "a\\b", "a%5Cb", "x%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rest string) {
		u, err := url.Parse("http://writ.example/proxy/up/" + rest)
		if err != nil || u.RawQuery != "" || u.Fragment != "" {
			return
		}
		r := &http.Request{Method: "GET", URL: u}
		escaped, decoded, err := requestPath(r)
		if err != nil {
			return
		}
		if again, _, err := requestPath(&http.Request{URL: &url.URL{Path: "/proxy/up" + decoded, RawPath: "/proxy/up" + escaped}}); err != nil || again != escaped {
			t.Fatalf("%q: normal path %q is taken again as %q, %v", rest, escaped, again, err)
		}
		segs, dsegs := strings.Split(escaped, "/"), strings.Split(decoded, "/")
		if len(segs) != len(dsegs) {
			t.Fatalf("%q: %q decodes to %q, with other segments", rest, escaped, decoded)
		}
		for i, s := range dsegs {
			if i > 0 && i < len(dsegs)-1 && s == "" {
				t.Fatalf("%q: empty segment in %q", rest, decoded)
			}
			if s, _, _ = strings.Cut(s, ";"); s == "." || s == ".." {
				t.Fatalf("%q: dot segment in %q", rest, decoded)
			}
		}
		if strings.Contains(strings.ToUpper(escaped), "%2F") || strings.Contains(strings.ToUpper(escaped), "%5C") || strings.ContainsAny(decoded, "\\\x00") {
			t.Fatalf("%q: %q / %q holds an encoded separator or a backslash", rest, escaped, decoded)
		}
		clean := path.Clean(decoded)
		if strings.HasSuffix(decoded, "/") && clean != "/" {
			clean += "/"
		}
		if clean != decoded {
			t.Fatalf("%q: Go's router would clean %q to %q", rest, decoded, clean)
		}
		if out := (&url.URL{Path: decoded, RawPath: escaped}).EscapedPath(); out != escaped {
			t.Fatalf("%q: decided %q, would forward %q", rest, escaped, out)
		}
	})
}
