package identity

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/refusal"
)

// allowedAlgs is the fixed set of signature algorithms writ accepts. All are
// asymmetric: "none" and the HMAC family are never accepted, so a public key
// published in a JWKS can never double as an HMAC secret.
var allowedAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

func algAllowed(alg string) bool {
	for _, a := range allowedAlgs {
		if string(a) == alg {
			return true
		}
	}
	return false
}

// header is the part of a JOSE header writ looks at before verification.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// claims are the registered claims writ checks.
type claims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.Audience     `json:"aud"`
	Expiry    *jwt.NumericDate `json:"exp"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ID        string           `json:"jti"`
}

// token is a parsed but not yet verified JWT. Its claims are what the token
// says, not what is true, until verify succeeds.
type token struct {
	header      header
	jws         *jwt.JSONWebToken
	claims      claims
	fingerprint string
}

// fingerprint is the hex SHA-256 of b: safe to record, unlike b.
func fingerprint(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// parseToken checks a bearer token's shape and reads its unverified header
// and claims. maxBytes bounds the work an attacker can cause before any
// signature check.
func parseToken(raw string, maxBytes int) (*token, *refusal.Error) {
	if len(raw) > maxBytes {
		return nil, refuse(ReasonOversized, "token is %d bytes; the limit is %d", len(raw), maxBytes)
	}
	t := &token{fingerprint: fingerprint([]byte(raw))}
	fail := func(r Reason, format string, a ...any) (*token, *refusal.Error) {
		return nil, t.refuse(r, format, a...)
	}
	if strings.Count(raw, ".") != 2 {
		return fail(ReasonMalformed, "token is not a compact JWS (header.payload.signature)")
	}
	h, _, _ := strings.Cut(raw, ".")
	hb, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return fail(ReasonMalformed, "token header is not base64url")
	}
	if err := json.Unmarshal(hb, &t.header); err != nil {
		return fail(ReasonMalformed, "token header is not a JSON object")
	}
	if !algAllowed(t.header.Alg) {
		return fail(ReasonAlgorithm, "alg '%s' is not allowed (want RS*, PS*, ES* or EdDSA)", bearer.Claim(t.header.Alg))
	}
	jws, err := jwt.ParseSigned(raw, allowedAlgs)
	if err != nil {
		return fail(ReasonMalformed, "token is not a valid signed JWT")
	}
	if len(jws.Headers) != 1 || string(jws.Headers[0].Algorithm) != t.header.Alg {
		return fail(ReasonMalformed, "token header is ambiguous")
	}
	t.jws = jws
	if err := jws.UnsafeClaimsWithoutVerification(&t.claims); err != nil {
		return fail(ReasonMalformed, "token claims are not a valid JWT claims set")
	}
	return t, nil
}

// verify checks the signature with key and fills out from the verified
// payload. On success t.claims are verified.
func (t *token) verify(key any, out ...any) *refusal.Error {
	if err := t.jws.Claims(key, append([]any{&t.claims}, out...)...); err != nil {
		return t.refuse(ReasonBadSignature, "signature does not verify with key '%s'", bearer.Claim(t.header.Kid))
	}
	return nil
}

// checkTimes enforces exp (required), nbf and iat within skew.
func (t *token) checkTimes(now time.Time, skew time.Duration) *refusal.Error {
	c := t.claims
	if c.Expiry == nil {
		return t.refuse(ReasonMissingClaim, "token has no exp claim")
	}
	if exp := c.Expiry.Time(); now.After(exp.Add(skew)) {
		return t.refuse(ReasonExpired, "token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if c.NotBefore != nil {
		if nbf := c.NotBefore.Time(); now.Add(skew).Before(nbf) {
			return t.refuse(ReasonNotYetValid, "token is not valid before %s", nbf.UTC().Format(time.RFC3339))
		}
	}
	if c.IssuedAt != nil {
		if iat := c.IssuedAt.Time(); now.Add(skew).Before(iat) {
			return t.refuse(ReasonNotYetValid, "token was issued in the future (%s)", iat.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// checkAudience requires the token's aud to name one of accepted.
func (t *token) checkAudience(accepted []string) *refusal.Error {
	for _, a := range accepted {
		if t.claims.Audience.Contains(a) {
			return nil
		}
	}
	if len(t.claims.Audience) == 0 {
		return t.refuse(ReasonWrongAudience, "token has no aud claim; want one of '%s'", accepted)
	}
	return t.refuse(ReasonWrongAudience, "token audience '%s' does not name '%s'", bearer.Claim(strings.Join(t.claims.Audience, ",")), accepted)
}

// refuse builds a refusal carrying what the token claimed.
func (t *token) refuse(r Reason, format string, a ...any) *refusal.Error {
	e := refuse(r, format, a...)
	e.Fingerprint = t.fingerprint
	e.Issuer = bearer.Claim(t.claims.Issuer)
	e.Subject = bearer.Claim(t.claims.Subject)
	return e
}
