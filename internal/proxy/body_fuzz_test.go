package proxy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/writhq/writ/internal/jcs"
)

// FuzzQuery: a query writ accepts is forwarded in a form that Go's parser
// reads as exactly the pairs policy saw, that writ itself reads back
// unchanged, and that holds neither ';' nor '+'.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"page=2", "q=a+b&x=%41&flag&&page=2&page=3", "a=1;b=2", "a=%zz", "a=%ff", "%", "=", "&&", "a=b=c", "k=%E2%82%AC", "a%20b=c%2Bd", "x=%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseQuery(raw)
		if err != nil {
			// writ refuses more than Go only for a ';' and for what does
			// not decode to UTF-8.
			if vals, goErr := url.ParseQuery(raw); goErr == nil && !strings.Contains(raw, ";") && utf8Values(vals) {
				t.Fatalf("parseQuery(%q) = %v, but Go parses it", raw, err)
			}
			return
		}
		enc := q.encode()
		if strings.ContainsAny(enc, ";+") {
			t.Fatalf("encode(%q) = %q holds ';' or '+'", raw, enc)
		}
		back, err := parseQuery(enc)
		if err != nil || !reflect.DeepEqual(back, q) && !(len(back) == 0 && len(q) == 0) {
			t.Fatalf("parseQuery(encode(%q)) = %q, %v; want %q", raw, back, err, q)
		}
		goVals, err := url.ParseQuery(enc)
		if err != nil {
			t.Fatalf("Go cannot parse the forwarded query %q: %v", enc, err)
		}
		want := q.values()
		if len(goVals) != len(want) {
			t.Fatalf("Go reads %q from %q, policy saw %q", goVals, enc, want)
		}
		for k, vs := range want {
			if !reflect.DeepEqual(goVals[k], vs) {
				t.Fatalf("Go reads %s=%q from %q, policy saw %q", k, goVals[k], enc, vs)
			}
		}
	})
}

func utf8Values(vals url.Values) bool {
	for k, vs := range vals {
		if !utf8.ValidString(k) {
			return false
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return false
			}
		}
	}
	return true
}

// FuzzBodyField: a body is recorded losslessly: JSON as JSON whose value,
// as Go (and so policy) reads it, canonicalizes to the body's own canonical
// form; text as the same text; anything else as its base64.
func FuzzBodyField(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":1,"a":2}`, `{"n":12345678901234567891}`, `[0.1,1e300,-0,9007199254740991]`, `[1E400]`, `"x"`, `null`, "\ufeff{}",
		`{"a":"\ud800"}`, "plain", "\xff\xfe", "{\"a\":1", `[1.5e-7, 100e-2, 0.000001]`, `123456789012345678`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		key, val, strictErr := bodyField(b)
		switch v := val.(type) {
		case json.RawMessage:
			if key != fieldBody || strictErr != nil {
				t.Fatalf("JSON body under %q with %v", key, strictErr)
			}
			canon, err := jcs.Canonicalize(v)
			if err != nil {
				t.Fatalf("recorded JSON %q does not canonicalize: %v", v, err)
			}
			var goView any
			if err := json.Unmarshal(v, &goView); err != nil {
				t.Fatal(err)
			}
			viaGo, err := jcs.Marshal(goView)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(viaGo, canon) {
				t.Fatalf("body %q: policy's view canonicalizes to %s, the body to %s", b, viaGo, canon)
			}
		case string:
			if key == fieldBody {
				if !utf8.ValidString(v) || v != string(b) {
					t.Fatalf("text body %q recorded as %q", b, v)
				}
				if json.Valid(b) && strictErr == nil {
					t.Fatalf("JSON body %q recorded as text without a reason", b)
				}
				return
			}
			raw, err := base64.StdEncoding.DecodeString(v)
			if key != fieldBodyBase64 || err != nil || !bytes.Equal(raw, b) || utf8.Valid(b) {
				t.Fatalf("body %q recorded under %q as %q", b, key, v)
			}
		default:
			t.Fatalf("body %q recorded as %T", b, val)
		}
	})
}
