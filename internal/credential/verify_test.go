package credential

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/writhq/writ/internal/refusal"
)

func TestVerifyRoundTrip(t *testing.T) {
	iss := newTestIssuer(t, IssuerOptions{})
	thumb := b64(sha256Sum("key"))
	chain := []string{"spiffe://example.org/agent/c", "spiffe://example.org/agent/b", "spiffe://example.org/agent/a"}
	for _, tc := range []struct {
		name string
		c    func(*Claims)
	}{
		{"bearer", func(*Claims) {}},
		{"dpop bound", func(c *Claims) { c.Cnf.JKT = thumb }},
		{"mtls bound", func(c *Claims) { c.Cnf.X5T = thumb }},
		{"delegated three deep", func(c *Claims) { c.Actors = chain }},
		{"max depth", func(c *Claims) { c.Actors = strings.Split(strings.Repeat("agent,", MaxActorDepth-1)+"agent", ",") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testClaims()
			tc.c(&c)
			tok, jti := mustIssue(t, iss, c)
			got, err := iss.Verify(t.Context(), tok, testNow.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			want := &Token{
				JTI: jti, Subject: c.Subject, Actors: c.Actors, TaskID: c.TaskID,
				Scope: "task:" + c.TaskID, IssuedAt: testNow, Expiry: testNow.Add(c.TTL), Cnf: c.Cnf,
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Token{}), cmpopts.EquateApproxTime(0)); diff != "" {
				t.Errorf("token (-want +got):\n%s", diff)
			}
			if got.Agent() != c.Actors[0] {
				t.Errorf("Agent() = %q, want %q", got.Agent(), c.Actors[0])
			}
		})
	}
}

func sha256Sum(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// TestVerifyRefusals covers every way a presented token is refused.
func TestVerifyRefusals(t *testing.T) {
	dir := t.TempDir()
	iss := newIssuerIn(t, dir, IssuerOptions{Issuer: "writ"})
	otherAud := newIssuerIn(t, dir, IssuerOptions{Issuer: "writ", Audience: "other"})
	otherIss := newIssuerIn(t, dir, IssuerOptions{Issuer: "not-writ"})
	otherKey := newTestIssuer(t, IssuerOptions{Issuer: "writ"})
	shortTTL := newIssuerIn(t, dir, IssuerOptions{Issuer: "writ", MaxTTL: 5 * time.Minute})

	good, _ := mustIssue(t, iss, testClaims())
	hdr := map[string]any{"kid": iss.KeyID(), "typ": TokenType}
	claims := func(mod func(map[string]any)) map[string]any {
		now := testNow.Unix()
		c := map[string]any{
			"iss": "writ", "sub": "user:alice", "aud": "writ", "act": map[string]any{"sub": "agent"},
			"txn": "t1", "scope": "task:t1", "jti": "j1", "iat": now, "nbf": now, "exp": now + 600,
		}
		if mod != nil {
			mod(c)
		}
		return c
	}
	// signed with writ's real key: only the claim or header checks stop these.
	realKey := func(h map[string]any, mod func(map[string]any)) string {
		if h == nil {
			h = hdr
		}
		return signRaw(t, "EdDSA", iss.priv, h, claims(mod))
	}
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + b64JSON(t, claims(func(c map[string]any) { c["sub"] = "user:mallory" })) + "." + parts[2]
	hsPub := signRaw(t, "HS256", []byte(iss.pub), hdr, claims(nil))
	hsJWKS := signRaw(t, "HS256", iss.JWKS(), hdr, claims(nil))
	deep := map[string]any{"sub": "a"}
	for range MaxActorDepth {
		deep = map[string]any{"sub": "a", "act": deep}
	}

	for _, tc := range []struct {
		name string
		iss  *Issuer
		tok  string
		now  time.Time
		want error
	}{
		{"expired", iss, good, testNow.Add(10*time.Minute + ClockSkew), ErrExpired},
		{"within skew after exp", iss, good, testNow.Add(10*time.Minute + ClockSkew - time.Second), nil},
		{"not yet valid", iss, good, testNow.Add(-ClockSkew - time.Second), ErrInvalidToken},
		{"wrong audience", otherAud, good, testNow, ErrInvalidToken},
		{"wrong issuer", otherIss, good, testNow, ErrInvalidToken},
		{"wrong key", otherKey, good, testNow, ErrInvalidToken},
		{"lifetime over max ttl", shortTTL, good, testNow, ErrInvalidToken},
		{"alg none", iss, signRaw(t, "none", nil, hdr, claims(nil)), testNow, ErrInvalidToken},
		{"alg none no signature", iss, strings.TrimSuffix(signRaw(t, "none", nil, hdr, claims(nil)), "."), testNow, ErrInvalidToken},
		{"HS256 keyed with public key", iss, hsPub, testNow, ErrInvalidToken},
		{"HS256 keyed with JWKS", iss, hsJWKS, testNow, ErrInvalidToken},
		{"tampered payload", iss, tampered, testNow, ErrInvalidToken},
		{"tampered signature", iss, good[:len(good)-2] + flip(good[len(good)-2:]), testNow, ErrInvalidToken},
		{"oversized", iss, good + strings.Repeat("A", MaxTokenBytes), testNow, ErrInvalidToken},
		{"empty", iss, "", testNow, ErrInvalidToken},
		{"garbage", iss, "not a token", testNow, ErrInvalidToken},
		{"JSON serialization", iss, `{"payload":"e30","signatures":[]}`, testNow, ErrInvalidToken},
		{"real key, valid claims", iss, realKey(nil, nil), testNow, nil},
		{"real key, jwk header", iss, realKey(map[string]any{"kid": iss.KeyID(), "typ": TokenType, "jwk": map[string]any{"kty": "OKP"}}, nil), testNow, ErrInvalidToken},
		{"real key, crit header", iss, realKey(map[string]any{"kid": iss.KeyID(), "typ": TokenType, "crit": []string{"exp"}}, nil), testNow, ErrInvalidToken},
		{"real key, no typ", iss, realKey(map[string]any{"kid": iss.KeyID()}, nil), testNow, ErrInvalidToken},
		{"real key, dpop typ", iss, realKey(map[string]any{"kid": iss.KeyID(), "typ": DPoPProofType}, nil), testNow, ErrInvalidToken},
		{"real key, other kid", iss, realKey(map[string]any{"kid": "k2", "typ": TokenType}, nil), testNow, ErrInvalidToken},
		{"real key, unknown claim", iss, realKey(nil, func(c map[string]any) { c["admin"] = true }), testNow, ErrInvalidToken},
		{"real key, aud array", iss, realKey(nil, func(c map[string]any) { c["aud"] = []string{"writ"} }), testNow, ErrInvalidToken},
		{"real key, no exp", iss, realKey(nil, func(c map[string]any) { delete(c, "exp") }), testNow, ErrInvalidToken},
		{"real key, no act", iss, realKey(nil, func(c map[string]any) { delete(c, "act") }), testNow, ErrInvalidToken},
		{"real key, empty act sub", iss, realKey(nil, func(c map[string]any) { c["act"] = map[string]any{"sub": "a", "act": map[string]any{}} }), testNow, ErrInvalidToken},
		{"real key, act too deep", iss, realKey(nil, func(c map[string]any) { c["act"] = deep }), testNow, ErrInvalidToken},
		{"real key, scope for other task", iss, realKey(nil, func(c map[string]any) { c["scope"] = "task:t2" }), testNow, ErrInvalidToken},
		{"real key, no jti", iss, realKey(nil, func(c map[string]any) { delete(c, "jti") }), testNow, ErrInvalidToken},
		{"real key, exp before iat", iss, realKey(nil, func(c map[string]any) { c["exp"] = testNow.Unix() - 1 }), testNow, ErrInvalidToken},
		{"real key, lifetime over max ttl", iss, realKey(nil, func(c map[string]any) { c["exp"] = testNow.Add(2 * time.Hour).Unix() }), testNow, ErrInvalidToken},
		{"real key, iat in future", iss, realKey(nil, func(c map[string]any) {
			c["iat"], c["nbf"] = testNow.Add(time.Minute).Unix(), testNow.Add(time.Minute).Unix()
		}), testNow, ErrInvalidToken},
		{"real key, both cnf members", iss, realKey(nil, func(c map[string]any) {
			c["cnf"] = map[string]any{"jkt": b64(make([]byte, 32)), "x5t#S256": b64(make([]byte, 32))}
		}), testNow, ErrInvalidToken},
		{"real key, empty cnf", iss, realKey(nil, func(c map[string]any) { c["cnf"] = map[string]any{} }), testNow, ErrInvalidToken},
		{"real key, unknown cnf member", iss, realKey(nil, func(c map[string]any) { c["cnf"] = map[string]any{"jwk": map[string]any{}} }), testNow, ErrInvalidToken},
		{"real key, trailing data", iss, signTrailing(t, iss, hdr, claims(nil)), testNow, ErrInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := tc.iss.Verify(t.Context(), tc.tok, tc.now)
			wantErr(t, err, tc.want)
			if tc.want != nil && tok != nil {
				t.Fatalf("refusal returned a token: %+v", tok)
			}
			if err != nil && strings.Contains(err.Error(), tc.tok) && tc.tok != "" {
				t.Fatal("error text contains the token")
			}
		})
	}
}

func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// signTrailing signs a payload with bytes after the JSON object.
func signTrailing(t *testing.T, iss *Issuer, hdr, claims map[string]any) string {
	h := map[string]any{"alg": "EdDSA"}
	for k, v := range hdr {
		h[k] = v
	}
	payload, _ := base64.RawURLEncoding.DecodeString(b64JSON(t, claims))
	input := b64JSON(t, h) + "." + b64(append(payload, []byte(` {"sub":"x"}`)...))
	return input + "." + b64(signature(t, "EdDSA", iss.priv, []byte(input)))
}

func TestVerifyRevocation(t *testing.T) {
	iss := newTestIssuer(t, IssuerOptions{})
	c := testClaims()
	byJTI, jti := mustIssue(t, iss, c)
	sameTask, _ := mustIssue(t, iss, c)
	other := testClaims()
	other.TaskID = "other-task"
	otherTask, _ := mustIssue(t, iss, other)
	for _, tok := range []string{byJTI, sameTask, otherTask} {
		if _, err := iss.Verify(t.Context(), tok, testNow); err != nil {
			t.Fatal(err) // also caches all three
		}
	}
	iss.Revocations().RevokeJTI(jti, testNow.Add(c.TTL))
	_, err := iss.Verify(t.Context(), byJTI, testNow)
	wantErr(t, err, ErrRevoked)
	if e := err.(*refusal.Error); e.JTI != jti || e.TaskID != c.TaskID {
		t.Errorf("revocation error names jti %q task %q, want %q %q", e.JTI, e.TaskID, jti, c.TaskID)
	}
	if _, err := iss.Verify(t.Context(), sameTask, testNow); err != nil {
		t.Fatalf("revoking one jti refused another token of the task: %v", err)
	}
	iss.Revocations().RevokeTask(c.TaskID)
	_, err = iss.Verify(t.Context(), sameTask, testNow)
	wantErr(t, err, ErrRevoked)
	if _, err := iss.Verify(t.Context(), otherTask, testNow); err != nil {
		t.Fatalf("revoking a task refused another task's token: %v", err)
	}
}

func TestVerifyCache(t *testing.T) {
	iss := newTestIssuer(t, IssuerOptions{CacheSize: 8})
	toks := tokensOfTasks(t, iss, 20)
	for _, tok := range toks {
		if _, err := iss.Verify(t.Context(), tok, testNow); err != nil {
			t.Fatal(err)
		}
		if n := iss.cache.len(); n > 8 {
			t.Fatalf("cache holds %d entries, limit 8", n)
		}
	}
	for _, tok := range toks {
		if _, err := iss.Verify(t.Context(), tok, testNow); err != nil {
			t.Fatalf("token evicted from the cache no longer verifies: %v", err)
		}
	}
	// A cached token is still checked for time: it expires on schedule.
	_, err := iss.Verify(t.Context(), toks[19], testNow.Add(time.Hour))
	wantErr(t, err, ErrExpired)
	_, err = iss.Verify(t.Context(), toks[19], testNow.Add(-time.Hour))
	wantErr(t, err, ErrInvalidToken)
	// Callers get copies: editing one does not change the next.
	a, _ := iss.Verify(t.Context(), toks[19], testNow)
	a.Actors[0], a.Subject = "spiffe://evil/agent", "mallory"
	b, _ := iss.Verify(t.Context(), toks[19], testNow)
	if b.Actors[0] == a.Actors[0] || b.Subject == a.Subject {
		t.Fatal("a modified token leaked into the cache")
	}
	// Expired entries go first when the cache is full.
	iss.cache.makeRoom(testNow.Add(time.Hour))
	if n := iss.cache.len(); n != 0 {
		t.Errorf("after sweeping at a time all tokens expired, cache holds %d", n)
	}
	noCache := newTestIssuer(t, IssuerOptions{CacheSize: -1})
	tok, _ := mustIssue(t, noCache, testClaims())
	if _, err := noCache.Verify(t.Context(), tok, testNow); err != nil || noCache.cache.len() != 0 {
		t.Fatalf("disabled cache: err %v, len %d", err, noCache.cache.len())
	}
}

func TestRevocationsPrune(t *testing.T) {
	now := testNow
	iss := newTestIssuer(t, IssuerOptions{MaxTTL: 10 * time.Minute, Now: func() time.Time { return now }})
	r := iss.Revocations()
	r.Load([]RevokedJTI{{JTI: "old", Expiry: now.Add(-time.Hour)}, {JTI: "live", Expiry: now.Add(5 * time.Minute)}}, []string{"t-loaded"})
	if j, tasks := r.Len(); j != 1 || tasks != 1 {
		t.Fatalf("after Load: %d jtis, %d tasks; want the expired jti dropped (1, 1)", j, tasks)
	}
	tok := func(jti, task string) *Token { return &Token{JTI: jti, TaskID: task} }
	for _, tc := range []struct {
		tok  *Token
		want bool
	}{
		{tok("live", "x"), true}, {tok("old", "x"), false}, {tok("x", "t-loaded"), true}, {tok("x", "y"), false},
	} {
		if got := r.IsRevoked(tc.tok); got != tc.want {
			t.Errorf("IsRevoked(%+v) = %v, want %v", tc.tok, got, tc.want)
		}
	}
	r.RevokeTask("t-new")
	now = now.Add(6 * time.Minute) // "live" token expired; tasks still within MaxTTL
	r.RevokeJTI("j2", now.Add(time.Minute))
	if j, tasks := r.Len(); j != 1 || tasks != 2 {
		t.Fatalf("after 6m: %d jtis, %d tasks; want 1 (j2), 2", j, tasks)
	}
	now = now.Add(10 * time.Minute)
	r.RevokeJTI("j3", now.Add(time.Minute))
	if j, tasks := r.Len(); j != 1 || tasks != 0 {
		t.Fatalf("after MaxTTL: %d jtis, %d tasks; want 1 (j3), 0", j, tasks)
	}
}

func TestIsRevokedAllocs(t *testing.T) {
	iss := newTestIssuer(t, IssuerOptions{})
	r := iss.Revocations()
	for k := range 1000 {
		r.RevokeJTI(fmt.Sprint("jti-", k), testNow.Add(time.Hour))
		r.RevokeTask(fmt.Sprint("task-", k))
	}
	tok := &Token{JTI: "jti-x", TaskID: "task-x"}
	if n := testing.AllocsPerRun(100, func() { r.IsRevoked(tok) }); n != 0 {
		t.Errorf("IsRevoked allocates %v times per call", n)
	}
}

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err    error
		code   string
		status int
	}{
		{ErrInvalidToken, CodeInvalidToken, 401},
		{ErrExpired, CodeInvalidToken, 401},
		{ErrRevoked, CodeInvalidToken, 401},
		{ErrBindingRequired, CodeInvalidToken, 401},
		{ErrBindingMismatch, CodeInvalidToken, 401},
		{ErrInvalidDPoPProof, CodeInvalidDPoPProof, 401},
		{ErrInvalidRequest, CodeInvalidRequest, 400},
		{tokenError(ErrRevoked, "x"), CodeInvalidToken, 401},
		{requestError(CodeInvalidScope, "x"), CodeInvalidScope, 400},
		{requestError(CodeUnsupportedGrantType, "x"), CodeUnsupportedGrantType, 400},
		{fmt.Errorf("wrapped: %w", requestError(CodeInvalidTarget, "x")), CodeInvalidTarget, 400},
		{newError(ErrInvalidRequest, CodeInvalidClient, "x"), CodeInvalidClient, 401},
		{errors.New("something else"), CodeInvalidToken, 401},
	} {
		if got := ErrorCode(tc.err); got != tc.code {
			t.Errorf("ErrorCode(%v) = %q, want %q", tc.err, got, tc.code)
		}
		if got := Refusal(tc.err).Kind.HTTPStatus(); got != tc.status {
			t.Errorf("HTTPStatus(%v) = %d, want %d", tc.err, got, tc.status)
		}
	}
	if ErrorCode(nil) != "" {
		t.Error("ErrorCode(nil) is not empty")
	}
	if d := Description(errors.New("secret /path")); d != "request refused" {
		t.Errorf("Description of a foreign error = %q", d)
	}

}

func TestChallenge(t *testing.T) {
	for _, tc := range []struct {
		err  error
		dpop bool
		want string
	}{
		{nil, false, `Bearer realm="writ"`},
		{nil, true, `DPoP realm="writ", algs="ES256 EdDSA RS256 PS256"`},
		{tokenError(ErrExpired, `expired "now"`), false, `Bearer realm="writ", error="invalid_token", error_description="expired 'now'"`},
		{dpopError("stale"), false, `DPoP realm="writ", algs="ES256 EdDSA RS256 PS256", error="invalid_dpop_proof", error_description="stale"`},
	} {
		if got := Challenge(tc.err, tc.dpop); got != tc.want {
			t.Errorf("Challenge(%v, %v) = %s, want %s", tc.err, tc.dpop, got, tc.want)
		}
	}
}
