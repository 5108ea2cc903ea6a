package credential

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/refusal"
)

// FuzzVerify runs token parsing and verification on arbitrary input. It must
// never panic; every refusal is a refusal (*refusal.Error) with header-safe text; and anything
// accepted really carries writ's Ed25519 signature over its first two parts.
func FuzzVerify(f *testing.F) {
	iss := newTestIssuer(f, IssuerOptions{Issuer: "writ", CacheSize: -1})
	c := testClaims()
	c.Actors = []string{"child", "parent"}
	good, _ := mustIssue(f, iss, c)
	c.Cnf.JKT = b64(make([]byte, 32))
	bound, _ := mustIssue(f, iss, c)
	hdr := map[string]any{"kid": iss.KeyID(), "typ": TokenType}
	f.Add(good)
	f.Add(bound)
	f.Add(good[:len(good)-3])
	f.Add(signRaw(f, "none", nil, hdr, map[string]any{"sub": "x"}))
	f.Add(signRaw(f, "HS256", []byte(iss.pub), hdr, map[string]any{"sub": "x"}))
	f.Add("eyJhbGciOiJFZERTQSJ9.e30.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := iss.Verify(t.Context(), raw, testNow)
		if err != nil {
			var e *refusal.Error
			if !errors.As(err, &e) {
				t.Fatalf("refusal %T is not a refusal (*refusal.Error)", err)
			}
			if bearer.Text(e.Detail) != e.Detail || ErrorCode(err) != CodeInvalidToken {
				t.Fatalf("bad refusal %q (%s)", e.Detail, ErrorCode(err))
			}
			return
		}
		parts := strings.Split(raw, ".")
		sig, derr := base64.RawURLEncoding.DecodeString(parts[2])
		if derr != nil || !ed25519.Verify(iss.pub, []byte(parts[0]+"."+parts[1]), sig) {
			t.Fatalf("accepted a token writ did not sign: %q", raw)
		}
		if len(tok.Actors) == 0 || tok.Scope != ScopePrefix+tok.TaskID || !tok.IssuedAt.Before(tok.Expiry) {
			t.Fatalf("accepted an inconsistent token: %+v", tok)
		}
	})
}

// FuzzVerifyDPoP runs proof verification on arbitrary proofs, methods, URIs
// and access tokens. It must never panic, refusals must wrap
// ErrInvalidDPoPProof, and an accepted proof's thumbprint is that of its own
// jwk header.
func FuzzVerifyDPoP(f *testing.F) {
	k := keysOnce(f)
	const at = "access.token.value"
	f.Add(makeProof(f, proofOpts{}, at), "POST", testHTU, at)
	f.Add(makeProof(f, proofOpts{alg: "EdDSA", key: k.ed}, ""), "POST", testHTU, "")
	f.Add(makeProof(f, proofOpts{alg: "RS256", key: k.rsa}, at), "POST", testHTU, at)
	f.Add(makeProof(f, proofOpts{alg: "HS256"}, at), "POST", testHTU, at)
	f.Add(makeProof(f, proofOpts{header: map[string]any{"jwk": withD(publicJWK(f, k.ec), k.ec.D)}}, at), "POST", testHTU, at)
	f.Add(makeProof(f, proofOpts{claims: map[string]any{"htu": "HTTPS://WRIT.example:443/v1/authorize?x"}}, at), "POST", testHTU, at)
	f.Add("e30.e30.", "GET", "https://[::1]/", "")
	f.Fuzz(func(t *testing.T, proof, method, htu, token string) {
		jkt, err := VerifyDPoP(proof, method, htu, token, testNow, NewReplayCache(4))
		if err != nil {
			var e *refusal.Error
			if !errors.As(err, &e) || !errors.Is(err, ErrInvalidDPoPProof) || bearer.Text(e.Detail) != e.Detail {
				t.Fatalf("bad refusal: %v", err)
			}
			return
		}
		key, e := checkDPoPHeader(proof)
		if e != nil {
			t.Fatalf("accepted a proof whose header is refused: %v", e)
		}
		if want, _ := thumbprint(key); jkt != want || !isThumbprint(jkt) {
			t.Fatalf("jkt %q is not the thumbprint of the proof's key", jkt)
		}
	})
}

// FuzzParseExchange parses arbitrary form bodies. It must never panic;
// refusals carry one of the OAuth codes ParseExchange documents and never
// echo a submitted token; accepted requests are internally consistent.
func FuzzParseExchange(f *testing.F) {
	f.Add(exchangeForm(nil).Encode())
	f.Add(exchangeForm(func(v url.Values) {
		v.Set("subject_token_type", TokenTypeAccessToken)
		v.Set("actor_token", testActorToken)
		v.Set("actor_token_type", TokenTypeJWT)
		v["resource"] = []string{"https://writ.example/mcp", "urn:x"}
	}).Encode())
	f.Add(exchangeForm(func(v url.Values) { v.Add("scope", "task:x") }).Encode())
	f.Add("grant_type=%zz&scope=task%3A")
	f.Add("")
	codes := map[string]bool{CodeInvalidRequest: true, CodeUnsupportedGrantType: true, CodeInvalidScope: true, CodeInvalidTarget: true}
	f.Fuzz(func(t *testing.T, body string) {
		r := exchangeRequest(body)
		x, err := ParseExchange(r)
		if err != nil {
			var e *refusal.Error
			if !errors.As(err, &e) || !codes[e.OAuth] || refusal.HTTPStatus(err) != http.StatusBadRequest {
				t.Fatalf("bad refusal: %v", err)
			}
			if form, perr := url.ParseQuery(body); perr == nil {
				for _, p := range []string{"subject_token", "actor_token"} {
					if v := form.Get(p); len(v) >= 8 && strings.Contains(e.Detail, v) {
						t.Fatalf("refusal echoes %s", p)
					}
				}
			}
			return
		}
		if !ValidTaskID(x.TaskID) || x.SubjectToken == "" || x.Delegation() != (x.ActorToken != "") {
			t.Fatalf("inconsistent request: %s", x)
		}
	})
}
