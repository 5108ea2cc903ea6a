package redact_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/jcs"
	"github.com/writhq/writ/internal/redact"
)

// FuzzRedact: Redact never panics; on a document jcs accepts it succeeds
// with canonical JSON; every path it reports names a redacted value; and a
// secret placed under a secret's key, or a token placed in a string, never
// reaches the output.
func FuzzRedact(f *testing.F) {
	f.Add(`{"nested":{"password":"hunter2"},"api_key":"k-123","list":[{"token":"t-1"}],"Password":"P"}`, "arguments.**.pin", "hunter2", "see  here")
	f.Add(`[1, "a", {"b": null}, true]`, "arguments[*].b", "s3cr3t-value", "")
	f.Add(`{"a.b": {"x": "`+ghp+`"}, "": 1}`, `arguments["a.b"].x`, "password", "token=")
	f.Add(`"text with `+jwt+` inside"`, "arguments", "zzzzzz", "Bearer ")
	f.Add(`{"k": "`+akia+` `+awsSecret+`"}`, "*.*", "AKIA", "-----BEGIN RSA PRIVATE KEY-----\n")
	f.Add(`{"u": "https://a:b@c/d?token=e&x=1"}`, "arguments.[", "abcdef", "\"")
	f.Add(`{"x": 1e400}`, "**", "secret!", "\\")
	f.Add(`{`, "", "", "")
	f.Fuzz(func(t *testing.T, doc, path, secret, around string) {
		e := redact.Default()
		out, paths, err := e.Redact("arguments", []byte(doc), []string{path})
		if _, jerr := jcs.Canonicalize([]byte(doc)); jerr == nil && err != nil {
			t.Fatalf("Redact(%q): %v on a document jcs accepts", doc, err)
		}
		if err == nil && out != nil {
			checkOutput(t, out, paths)
		}

		// A secret under a secret's key, and a GitHub token made of the
		// fuzzed text, both beside the fuzzed document.
		tok := "ghp_" + alnum(secret+around+"padding-to-thirty-six-characters-long", 36)
		var inner any = doc
		if json.Valid([]byte(doc)) {
			inner = json.RawMessage(doc)
		}
		composed, err := json.Marshal(map[string]any{"db": map[string]any{"Password": secret}, "note": around + " " + tok + " " + around, "doc": inner})
		if err != nil {
			return // doc is valid for json.Valid but not for Marshal: nothing to test
		}
		out, paths, err = e.Redact("arguments", composed, []string{path})
		if err != nil {
			if _, jerr := jcs.Canonicalize(composed); jerr == nil {
				t.Fatalf("Redact(%s): %v", composed, err)
			}
			return
		}
		checkOutput(t, out, paths)
		var in any
		if err := json.Unmarshal([]byte(doc), &in); err != nil {
			in = doc
		}
		for _, s := range []string{secret, tok} {
			if len(s) < 4 || strings.Contains(redact.Replacement, s) || containsString(in, s) || strings.Contains(around, s) && s == secret {
				continue
			}
			var got any
			json.Unmarshal(out, &got)
			if containsString(got, s) {
				t.Fatalf("%q survives in %s", s, out)
			}
		}
	})
}

// FuzzClean: Clean says a document is clean exactly when Redact replaces
// nothing in it, and then Redact's output is the document's canonical
// JSON, where it has one.
func FuzzClean(f *testing.F) {
	f.Add(`{"path":"/data/x","n":1.50,"list":[{"a":"b"}],"nested":{"k":"v"}}`, "arguments.**.pin")
	f.Add(`{"nested":{"password":"hunter2"}}`, "")
	f.Add(`{"note":"`+ghp+`"}`, "")
	f.Add(`{"`+ghp+`":1}`, "")
	f.Add(`{"k": "`+akia+` `+awsSecret+`"}`, "")
	f.Add(`[1, "a", {"b": null}]`, "arguments[*].b")
	f.Add(`{"a":1}`, "arguments")
	f.Add(`{"a":1}`, "arguments.[")
	f.Add(`"text"`, "")
	f.Fuzz(func(t *testing.T, doc, path string) {
		var v any
		if json.Unmarshal([]byte(doc), &v) != nil {
			return
		}
		e := redact.Default()
		extra := []string{path}
		out, paths, err := e.Redact("arguments", []byte(doc), extra)
		clean := e.Clean("arguments", v, []byte(doc), extra)
		if err != nil {
			if clean {
				t.Fatalf("Clean(%q) although Redact failed: %v", doc, err)
			}
			return
		}
		if clean != (len(paths) == 0) {
			t.Fatalf("Clean(%q, %q) = %v, Redact's paths %q", doc, path, clean, paths)
		}
		// (A document jcs refuses, invalid UTF-8 say, has no canonical
		// form to stand in for Redact's.)
		if c, cerr := jcs.Canonicalize([]byte(doc)); clean && cerr == nil && !bytes.Equal(c, out) {
			t.Fatalf("Clean(%q) but Redact gave %s, not the canonical %s", doc, out, c)
		}
	})
}

// checkOutput checks that out is canonical JSON and that each path names
// a redacted value (or a member whose name was).
func checkOutput(t *testing.T, out []byte, paths []string) {
	t.Helper()
	if c, err := jcs.Canonicalize(out); err != nil || !bytes.Equal(c, out) {
		t.Fatalf("output %q is not canonical JSON: %v", out, err)
	}
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if strings.HasPrefix(p, "(") {
			continue
		}
		got, last, ok := resolve(v, p)
		if !ok {
			t.Fatalf("path %q not in %s", p, out)
		}
		if s, isStr := got.(string); isStr && strings.Contains(s, redact.Replacement) || strings.Contains(last, redact.Replacement) {
			continue
		}
		if m, isObj := got.(map[string]any); isObj && p == "arguments" {
			for k, x := range m {
				if x != redact.Replacement {
					t.Fatalf("whole document redacted but %q is %v", k, x)
				}
			}
			continue
		}
		t.Fatalf("path %q holds %v in %s", p, got, out)
	}
}

// resolve follows a printed path ("arguments.a[0][\"b.c\"]") into v, and
// returns the value and the last member name.
func resolve(v any, p string) (any, string, bool) {
	rest, ok := strings.CutPrefix(p, "arguments")
	last := ""
	for ok && rest != "" {
		switch rest[0] {
		case '.':
			end := strings.IndexAny(rest[1:], ".[")
			if end < 0 {
				end = len(rest) - 1
			}
			last, rest = rest[1:1+end], rest[1+end:]
			m, isObj := v.(map[string]any)
			v, ok = m[last]
			ok = ok && isObj
		case '[':
			if strings.HasPrefix(rest, `["`) {
				dec := json.NewDecoder(strings.NewReader(rest[1:]))
				if dec.Decode(&last) != nil {
					return nil, "", false
				}
				rest = rest[1+int(dec.InputOffset()):]
				m, isObj := v.(map[string]any)
				v, ok = m[last]
				ok = ok && isObj && strings.HasPrefix(rest, "]")
				rest = strings.TrimPrefix(rest, "]")
				continue
			}
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, "", false
			}
			n, err := strconv.Atoi(rest[1:end])
			a, isArr := v.([]any)
			if ok = err == nil && isArr && n < len(a); ok {
				v = a[n]
			}
			rest = rest[end+1:]
		default:
			return nil, "", false
		}
	}
	return v, last, ok
}

// containsString reports whether any string or member name in v holds s,
// outside the Replacement constant.
func containsString(v any, s string) bool {
	has := func(x string) bool {
		for _, piece := range strings.Split(x, redact.Replacement) {
			if strings.Contains(piece, s) {
				return true
			}
		}
		return false
	}
	switch x := v.(type) {
	case string:
		return has(x)
	case []any:
		for _, m := range x {
			if containsString(m, s) {
				return true
			}
		}
	case map[string]any:
		for k, m := range x {
			if has(k) || containsString(m, s) {
				return true
			}
		}
	}
	return false
}

// alnum keeps the ASCII letters and digits of s, cut or padded to n.
func alnum(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < n; i++ {
		if c := s[i]; 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			b.WriteByte(c)
		}
	}
	for b.Len() < n {
		b.WriteByte('x')
	}
	return b.String()
}
