package server

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzRequestHeaders feeds arbitrary Authorization and traceparent values
// to the header parsers of the decision API: no panic, a token only from a
// well-formed header, a trace ID only of 32 lowercase hex digits, and a
// challenge that stays inside the quoted-string characters RFC 6750 allows.
func FuzzRequestHeaders(f *testing.F) {
	f.Add("Bearer eyJhbGciOiJFZERTQSJ9.e30.sig", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("DPoP  tok", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")
	f.Add("Basic dXNlcjpwYXNz", "garbage")
	f.Add("bearer", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01")
	f.Add("Bearer \"\\\x00é", "")
	f.Fuzz(func(t *testing.T, authz, traceparent string) {
		r, _ := http.NewRequest(http.MethodPost, "http://writ.example/v1/authorize", nil)
		r.Header["Authorization"] = []string{authz}
		r.Header["Traceparent"] = []string{traceparent}
		tok, dpop, f := accessToken(r)
		if f == nil && (tok == "" || strings.HasPrefix(tok, " ")) {
			t.Fatalf("accepted %q as token %q", authz, tok)
		}
		if f != nil {
			if tok != "" || f.Kind == 0 || f.Code == "" {
				t.Fatalf("refusal %+v with token %q", f, tok)
			}
			f.Detail = authz // an attacker-controlled detail must still be header-safe
			for _, c := range []byte(challenge(f, dpop)) {
				if c < 0x20 || c > 0x7e {
					t.Fatalf("challenge holds byte %#x", c)
				}
			}
		}
		if id := traceID(r); id != "" {
			if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" || strings.Trim(id, "0") == "" {
				t.Fatalf("trace id %q from %q", id, traceparent)
			}
		}
	})
}
