package credential

import (
	"testing"
)

// TestResourceBoundToken: a token issued for a resource carries it as aud
// and is accepted only there; a token of the issuer's audience everywhere.
func TestResourceBoundToken(t *testing.T) {
	iss := newTestIssuer(t, IssuerOptions{})
	c := testClaims()
	c.Resource = "https://writ.example/mcp/erp"
	raw, _ := mustIssue(t, iss, c)
	tok, err := iss.Verify(t.Context(), raw, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Resource != c.Resource || !tok.AcceptedAt(c.Resource) || tok.AcceptedAt("https://writ.example/mcp/hr") || tok.AcceptedAt("https://writ.example/v1/authorize") {
		t.Errorf("bound token: Resource %q", tok.Resource)
	}
	raw, _ = mustIssue(t, iss, testClaims())
	tok, err = iss.Verify(t.Context(), raw, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Resource != "" || !tok.AcceptedAt("https://writ.example/mcp/hr") {
		t.Errorf("default token: Resource %q", tok.Resource)
	}
	for _, bad := range []string{"writ", "urn:x", "/mcp/erp", "https://writ.example/mcp?x", "ftp://writ.example/x", "https://u@writ.example/x"} {
		c.Resource = bad
		if _, _, err := iss.Issue(c); err == nil {
			t.Errorf("Issue with resource %q succeeded", bad)
		}
	}
}

// FuzzIsResourceURI: whatever IsResourceURI accepts, a token can be bound
// to, and that token verifies bound to exactly it.
func FuzzIsResourceURI(f *testing.F) {
	for _, s := range []string{"https://writ.example/mcp/erp", "http://127.0.0.1:8080/proxy/x", "https://writ.example", "urn:x", "https://[::1]/", "https://a/%zz", "https://a/#x", "writ", ""} {
		f.Add(s)
	}
	iss := newTestIssuer(f, IssuerOptions{})
	f.Fuzz(func(t *testing.T, s string) {
		if !IsResourceURI(s) {
			return
		}
		c := testClaims()
		c.Resource = s
		raw, _, err := iss.Issue(c)
		if err != nil {
			if len(raw) == 0 && len(s) > 1024 {
				return // the token would exceed MaxTokenBytes
			}
			t.Fatalf("Issue with resource %q: %v", s, err)
		}
		tok, err := iss.Verify(t.Context(), raw, testNow)
		if err != nil || tok.Resource != s || !tok.AcceptedAt(s) {
			t.Fatalf("resource %q: verified %+v, %v", s, tok, err)
		}
	})
}
