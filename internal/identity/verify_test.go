package identity

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/refusal"
)

func TestVerifyTokenAccepts(t *testing.T) {
	w := newWorld(t)
	a := w.auth(t, Options{})
	tests := []struct {
		name string
		tok  string
		want Principal
	}{{
		name: "oidc ES256",
		tok:  sign(t, jose.ES256, w.ec, "oidc-1", "JWT", oidcClaims(nil)),
		want: Principal{Kind: KindHuman, ID: "oidc:https://idp.example.com#alice", Subject: "alice", Issuer: testIssuer,
			Roles: []Role{RoleRequester, RoleApprover}, Method: MethodOIDC, Expiry: testNow.Add(time.Hour), JTI: "j-1"},
	}, {
		name: "oidc RS256 access token typ, single string role claim",
		tok: sign(t, jose.RS256, w.rsa, "oidc-rsa", "at+jwt", oidcClaims(func(m map[string]any) {
			m["realm"] = map[string]any{"groups": "root"}
			delete(m, "jti")
		})),
		want: Principal{Kind: KindHuman, ID: "oidc:https://idp.example.com#alice", Subject: "alice", Issuer: testIssuer,
			Roles: []Role{RoleAdmin}, Method: MethodOIDC, Expiry: testNow.Add(time.Hour)},
	}, {
		name: "jwt-svid",
		tok:  sign(t, jose.ES256, w.ec, "spiffe-1", "JWT", svidClaims("spiffe://example.org/agent/summarizer", nil)),
		want: Principal{Kind: KindAgent, ID: "spiffe://example.org/agent/summarizer", Subject: "spiffe://example.org/agent/summarizer",
			Issuer: "spiffe://example.org", Method: MethodJWTSVID, Expiry: testNow.Add(5 * time.Minute)},
	}, {
		name: "jwt-svid with role, audience among several, expired within skew",
		tok: sign(t, jose.ES256, w.ec, "spiffe-1", "", svidClaims("spiffe://example.org/orchestrator/a", func(m map[string]any) {
			m["aud"] = []string{"other", "writ"}
			m["exp"] = testNow.Add(-20 * time.Second).Unix()
		})),
		want: Principal{Kind: KindAgent, ID: "spiffe://example.org/orchestrator/a", Subject: "spiffe://example.org/orchestrator/a",
			Issuer: "spiffe://example.org", Roles: []Role{RoleRequester}, Method: MethodJWTSVID, Expiry: testNow.Add(-20 * time.Second)},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.VerifyToken(t.Context(), tt.tok)
			if err != nil {
				t.Fatalf("VerifyToken: %v", err)
			}
			tt.want.Fingerprint = fingerprint([]byte(tt.tok))
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("principal (-want +got):\n%s", d)
			}
		})
	}
}

func TestVerifyTokenRefusals(t *testing.T) {
	w := newWorld(t)
	a := w.auth(t, Options{})
	svid := func(mod func(map[string]any)) map[string]any {
		return svidClaims("spiffe://example.org/agent/x", mod)
	}
	good := sign(t, jose.ES256, w.ec, "spiffe-1", "JWT", svid(nil))
	tampered := func() string {
		parts := strings.Split(good, ".")
		c := svidClaims("spiffe://example.org/agent/admin", nil)
		evil := strings.Split(unsigned(t, map[string]any{"alg": "ES256", "kid": "spiffe-1"}, c), ".")[1]
		return parts[0] + "." + evil + "." + parts[2]
	}()
	flipped := func() string {
		b := []byte(good)
		i := len(b) - 5
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}()
	tests := []struct {
		name string
		tok  string
		want Reason
	}{
		{"expired", sign(t, jose.ES256, w.ec, "spiffe-1", "", svid(func(m map[string]any) { m["exp"] = testNow.Add(-time.Hour).Unix() })), ReasonExpired},
		{"expired just past skew", sign(t, jose.ES256, w.ec, "oidc-1", "", oidcClaims(func(m map[string]any) { m["exp"] = testNow.Add(-31 * time.Second).Unix() })), ReasonExpired},
		{"not yet valid", sign(t, jose.ES256, w.ec, "spiffe-1", "", svid(func(m map[string]any) { m["nbf"] = testNow.Add(time.Hour).Unix() })), ReasonNotYetValid},
		{"issued in the future", sign(t, jose.ES256, w.ec, "oidc-1", "", oidcClaims(func(m map[string]any) { m["iat"] = testNow.Add(10 * time.Minute).Unix() })), ReasonNotYetValid},
		{"no exp", sign(t, jose.ES256, w.ec, "spiffe-1", "", svid(func(m map[string]any) { delete(m, "exp") })), ReasonMissingClaim},
		{"oidc no sub", sign(t, jose.ES256, w.ec, "oidc-1", "", oidcClaims(func(m map[string]any) { delete(m, "sub") })), ReasonMissingClaim},
		{"oidc sub with a bidi override", sign(t, jose.ES256, w.ec, "oidc-1", "", oidcClaims(func(m map[string]any) { m["sub"] = "alice\u202ecod" })), ReasonMalformed},
		{"oidc sub with NUL", sign(t, jose.ES256, w.ec, "oidc-1", "", oidcClaims(func(m map[string]any) { m["sub"] = "alice\x00" })), ReasonMalformed},
		{"wrong audience", sign(t, jose.ES256, w.ec, "spiffe-1", "", svid(func(m map[string]any) { m["aud"] = "other" })), ReasonWrongAudience},
		{"no audience", sign(t, jose.ES256, w.ec, "oidc-1", "", oidcClaims(func(m map[string]any) { delete(m, "aud") })), ReasonWrongAudience},
		{"wrong trust domain", sign(t, jose.ES256, w.other, "spiffe-1", "", svidClaims("spiffe://evil.org/agent/x", nil)), ReasonWrongTrustDomain},
		{"wrong trust domain signed with trusted key", sign(t, jose.ES256, w.ec, "spiffe-1", "", svidClaims("spiffe://evil.org/agent/x", nil)), ReasonWrongTrustDomain},
		{"unknown key", sign(t, jose.ES256, w.other, "nope", "", svid(nil)), ReasonUnknownKey},
		{"svid without kid", sign(t, jose.ES256, w.ec, "", "", svid(nil)), ReasonUnknownKey},
		{"oidc unknown key", sign(t, jose.ES256, w.other, "nope", "", oidcClaims(nil)), ReasonUnknownKey},
		{"untrusted key claiming a trusted kid", sign(t, jose.ES256, w.other, "spiffe-1", "", svid(nil)), ReasonBadSignature},
		{"oidc key id of an RSA key with an EC signature", sign(t, jose.ES256, w.ec, "oidc-rsa", "", oidcClaims(nil)), ReasonBadSignature},
		{"tampered payload", tampered, ReasonBadSignature},
		{"tampered signature", flipped, ReasonBadSignature},
		{"alg none", unsigned(t, map[string]any{"alg": "none", "kid": "spiffe-1"}, svid(nil)), ReasonAlgorithm},
		{"alg NONE", unsigned(t, map[string]any{"alg": "NONE"}, oidcClaims(nil)), ReasonAlgorithm},
		{"HS256 with the public key as secret", sign(t, jose.HS256, w.oidcPub, "oidc-1", "", oidcClaims(nil)), ReasonAlgorithm},
		{"HS256 svid", sign(t, jose.HS256, w.oidcPub, "spiffe-1", "", svid(nil)), ReasonAlgorithm},
		{"no alg", unsigned(t, map[string]any{"kid": "spiffe-1"}, svid(nil)), ReasonAlgorithm},
		{"oversized", sign(t, jose.ES256, w.ec, "oidc-1", "", oidcClaims(func(m map[string]any) { m["pad"] = strings.Repeat("x", 17<<10) })), ReasonOversized},
		{"garbage", "not a token", ReasonMalformed},
		{"empty segments", "..", ReasonMalformed},
		{"JWE shape", "a.b.c.d.e", ReasonMalformed},
		{"header not JSON", "bm90anNvbg.e30.c2ln", ReasonMalformed},
		{"svid typ", sign(t, jose.ES256, w.ec, "spiffe-1", "at+jwt", svid(nil)), ReasonMalformed},
		{"bad spiffe id", sign(t, jose.ES256, w.ec, "spiffe-1", "", svidClaims("spiffe://example.org/a/../b", nil)), ReasonMalformed},
		{"unknown issuer", sign(t, jose.ES256, w.ec, "oidc-1", "", oidcClaims(func(m map[string]any) { m["iss"] = "https://evil.example" })), ReasonUnknownIssuer},
		{"no issuer, not spiffe", sign(t, jose.ES256, w.ec, "oidc-1", "", oidcClaims(func(m map[string]any) { delete(m, "iss") })), ReasonUnknownIssuer},
		{"exp as string", sign(t, jose.ES256, w.ec, "oidc-1", "", oidcClaims(func(m map[string]any) { m["exp"] = "tomorrow" })), ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.VerifyToken(t.Context(), tt.tok)
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			var e *refusal.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not a *refusal.Error", err, err)
			}
			if Reason(e.Code) != tt.want {
				t.Errorf("reason = %s (%s), want %s", Reason(e.Code), e.Detail, tt.want)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("error does not match ErrInvalidToken")
			}
			if strings.Contains(e.Error(), tt.tok) && len(tt.tok) > 20 {
				t.Errorf("error contains the token")
			}
			if d := bearer.Text(e.Detail); d != e.Detail {
				t.Errorf("detail has characters WWW-Authenticate cannot carry: %q", e.Detail)
			}
		})
	}
}

// TestCache checks that a cached token is served until it expires, and that a
// refusal is never cached.
func TestCache(t *testing.T) {
	w := newWorld(t)
	now := testNow
	a := w.auth(t, Options{Now: func() time.Time { return now }})
	tok := sign(t, jose.ES256, w.ec, "spiffe-1", "", svidClaims("spiffe://example.org/agent/x", func(m map[string]any) {
		m["exp"] = testNow.Add(time.Minute).Unix()
	}))
	p1, err := a.VerifyToken(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if a.cache.len() != 1 {
		t.Fatalf("cache holds %d entries, want 1", a.cache.len())
	}
	p1.Roles = append(p1.Roles, RoleAdmin) // callers cannot change what is cached
	p2, err := a.VerifyToken(t.Context(), tok)
	if err != nil || p2.HasRole(RoleAdmin) {
		t.Fatalf("cached verify: %+v, %v", p2, err)
	}
	now = testNow.Add(2 * time.Minute) // past exp + skew
	if _, err := a.VerifyToken(t.Context(), tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("expired token served from cache: %v", err)
	}
	bad := sign(t, jose.ES256, w.other, "spiffe-1", "", svidClaims("spiffe://example.org/agent/x", nil))
	a.VerifyToken(t.Context(), bad)
	if a.cache.len() != 0 {
		t.Errorf("cache holds %d entries after a refusal and an expiry, want 0", a.cache.len())
	}
}

func TestCacheBounded(t *testing.T) {
	c := newCache(8, time.Minute)
	p := Principal{ID: "x", Expiry: testNow.Add(time.Hour)}
	for i := range 100 {
		c.put([32]byte{byte(i)}, p, testNow)
	}
	if c.len() != 8 {
		t.Errorf("cache holds %d, want 8", c.len())
	}
	if _, ok := c.get([32]byte{99}, testNow); !ok {
		t.Errorf("latest entry missing")
	}
	if _, ok := c.get([32]byte{99}, testNow.Add(time.Minute)); ok {
		t.Errorf("entry served past max age")
	}
}

func TestChallenge(t *testing.T) {
	tests := []struct {
		err    error
		status int
		want   string
	}{
		{refuse(ReasonNoCredentials, "x"), 401, `Bearer realm="writ"`},
		{refuse(ReasonExpired, `token "expired"`+"\r\n\\"), 401, `Bearer realm="writ", error="invalid_token", error_description="token 'expired'??/"`},
		{refuse(ReasonBadRequest, "two headers"), 400, `Bearer realm="writ", error="invalid_request", error_description="two headers"`},
		{refuse(ReasonInsufficientScope, "requires role approver"), 403, `Bearer realm="writ", error="insufficient_scope", error_description="requires role approver"`},
		{errors.New("other"), 401, `Bearer realm="writ", error="invalid_token", error_description="credentials refused"`},
	}
	for _, tt := range tests {
		if got := Challenge(tt.err); got != tt.want {
			t.Errorf("Challenge(%v) = %s, want %s", tt.err, got, tt.want)
		}
		if got := Refusal(tt.err).Kind.HTTPStatus(); got != tt.status {
			t.Errorf("HTTPStatus(%v) = %d, want %d", tt.err, got, tt.status)
		}
	}
}

var _ = cmpopts.EquateEmpty
