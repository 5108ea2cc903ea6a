package credential

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unsafe"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/refusal"
)

// Token is a verified writ access token. Verify returns a fresh copy each
// time, so the caller may keep or modify it.
type Token struct {
	// JTI is the token's unique ID, the key of per-token revocation.
	JTI string
	// Subject is the human requester the task acts for (sub).
	Subject string
	// Actors is the act chain: Actors[0] is the agent presenting the token,
	// each next entry the agent that delegated to the one before, the last
	// the agent of the root task.
	Actors []string
	// TaskID is the task the token is bound to (txn).
	TaskID string
	// Scope is the scope claim, "task:<TaskID>".
	Scope string
	// IssuedAt and Expiry are iat and exp.
	IssuedAt time.Time
	Expiry   time.Time
	// Cnf is the confirmation claim; zero for a bearer token.
	Cnf Cnf
	// Resource is the one resource the token was issued for (RFC 8707,
	// its aud), or "" for a token of the issuer's own audience, which
	// every writ enforcement point accepts.
	Resource string

	notBefore time.Time
}

// AcceptedAt reports whether the token may be used at the resource named
// by the URI resource: any, for a token of the issuer's own audience;
// else only its own.
func (t *Token) AcceptedAt(resource string) bool {
	return t.Resource == "" || t.Resource == resource
}

// Agent is the agent presenting the token, Actors[0] ("" if none).
func (t *Token) Agent() string {
	if len(t.Actors) == 0 {
		return ""
	}
	return t.Actors[0]
}

func (t *Token) clone() *Token {
	c := *t
	c.Actors = append([]string(nil), t.Actors...)
	return &c
}

// tokenHeader is the exact JOSE header Issue writes; Verify refuses any
// other member (jwk, jku, x5u, crit, ...), so no header can redirect key
// selection or change how the signature is checked.
type tokenHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

var onlyEdDSA = []jose.SignatureAlgorithm{jose.EdDSA}

// Verify checks a presented access token at time now and returns what it
// says. It accepts only a compact JWS of at most MaxTokenBytes, typ at+jwt,
// alg EdDSA, this issuer's kid and key, this issuer's iss and aud, iat <= nbf
// < exp with exp-iat at most MaxTTL, all within ClockSkew of now, and a token
// neither it nor its task revoked.
//
// Refusals wrap ErrInvalidToken, ErrExpired or ErrRevoked. A successful
// verification is cached by the token's SHA-256 until it expires; the cache
// spares only the signature and claim checks, never the time or revocation
// checks. ctx is accepted for tracing; Verify does no I/O.
func (i *Issuer) Verify(ctx context.Context, raw string, now time.Time) (*Token, error) {
	switch {
	case raw == "":
		return nil, tokenError(ErrInvalidToken, "no access token")
	case len(raw) > MaxTokenBytes:
		return nil, tokenError(ErrInvalidToken, "access token is %d bytes; the limit is %d", len(raw), MaxTokenBytes)
	}
	// sha256 reads the bytes and does not keep them: no copy needed.
	key := sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
	tok, ok := i.cache.get(key)
	if !ok {
		var err *refusal.Error
		if tok, err = i.verifySigned(raw); err != nil {
			return nil, err
		}
		if err := checkTimes(tok, now); err != nil {
			return nil, err
		}
		i.cache.put(key, tok, now)
	} else if err := checkTimes(tok, now); err != nil {
		return nil, err
	}
	if i.revoked.IsRevoked(tok) {
		e := tokenError(ErrRevoked, "access token has been revoked")
		e.JTI, e.TaskID = tok.JTI, tok.TaskID
		return nil, e
	}
	return tok.clone(), nil
}

// verifySigned parses raw, checks header and signature, and validates the
// claims that do not depend on the time.
func (i *Issuer) verifySigned(raw string) (*Token, *refusal.Error) {
	if strings.Count(raw, ".") != 2 {
		return nil, tokenError(ErrInvalidToken, "access token is not a compact JWS (header.payload.signature)")
	}
	h, _, _ := strings.Cut(raw, ".")
	hb, err := base64.RawURLEncoding.Strict().DecodeString(h)
	if err != nil {
		return nil, tokenError(ErrInvalidToken, "access token header is not base64url")
	}
	var hdr tokenHeader
	if err := decodeStrict(hb, &hdr); err != nil {
		return nil, tokenError(ErrInvalidToken, "access token header is not a writ access token header")
	}
	switch {
	case hdr.Alg != string(jose.EdDSA):
		return nil, tokenError(ErrInvalidToken, "alg '%s' is not allowed (writ access tokens are EdDSA)", bearer.Claim(hdr.Alg))
	case hdr.Typ != TokenType:
		return nil, tokenError(ErrInvalidToken, "typ '%s' is not %s", bearer.Claim(hdr.Typ), TokenType)
	case hdr.Kid != i.kid:
		return nil, tokenError(ErrInvalidToken, "kid '%s' is not this issuer's key", bearer.Claim(hdr.Kid))
	}
	jws, err := jose.ParseSigned(raw, onlyEdDSA)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, tokenError(ErrInvalidToken, "access token is not a valid JWS")
	}
	payload, err := jws.Verify(i.pub)
	if err != nil {
		return nil, tokenError(ErrInvalidToken, "access token signature does not verify")
	}
	var c wireClaims
	if err := decodeStrict(payload, &c); err != nil {
		return nil, tokenError(ErrInvalidToken, "access token claims are malformed")
	}
	tok, e := i.checkWireClaims(&c)
	if e != nil {
		e.JTI, e.TaskID = bearer.Claim(c.JTI), bearer.Claim(c.Txn)
		return nil, e
	}
	return tok, nil
}

func (i *Issuer) checkWireClaims(c *wireClaims) (*Token, *refusal.Error) {
	switch {
	case c.Iss != i.iss:
		return nil, tokenError(ErrInvalidToken, "issuer '%s' is not '%s'", bearer.Claim(c.Iss), i.iss)
	case c.Aud != i.aud && !IsResourceURI(c.Aud):
		return nil, tokenError(ErrInvalidToken, "audience '%s' is neither '%s' nor a resource URI", bearer.Claim(c.Aud), i.aud)
	case c.Sub == "" || c.JTI == "":
		return nil, tokenError(ErrInvalidToken, "access token lacks sub or jti")
	case !ValidTaskID(c.Txn) || c.Scope != ScopePrefix+c.Txn:
		return nil, tokenError(ErrInvalidToken, "access token txn and scope do not name one task")
	case c.Iat <= 0 || c.Nbf < c.Iat || c.Exp <= c.Nbf:
		return nil, tokenError(ErrInvalidToken, "access token times are inconsistent (want 0 < iat <= nbf < exp)")
	case c.Exp-c.Iat > int64(i.maxTTL/time.Second):
		return nil, tokenError(ErrInvalidToken, "access token lifetime exceeds the maximum %v", i.maxTTL)
	}
	t := &Token{
		JTI: c.JTI, Subject: c.Sub, TaskID: c.Txn, Scope: c.Scope, Resource: resourceOf(c.Aud, i.aud),
		IssuedAt: time.Unix(c.Iat, 0), notBefore: time.Unix(c.Nbf, 0), Expiry: time.Unix(c.Exp, 0),
	}
	for a := c.Act; a != nil; a = a.Act {
		if a.Sub == "" || len(t.Actors) == MaxActorDepth {
			return nil, tokenError(ErrInvalidToken, "access token act chain is empty, has an empty sub, or is deeper than %d", MaxActorDepth)
		}
		t.Actors = append(t.Actors, a.Sub)
	}
	if len(t.Actors) == 0 {
		return nil, tokenError(ErrInvalidToken, "access token has no act claim")
	}
	if c.Cnf != nil {
		switch {
		case c.Cnf.JKT != "" && c.Cnf.X5T != "",
			c.Cnf.JKT == "" && c.Cnf.X5T == "",
			c.Cnf.JKT != "" && !isThumbprint(c.Cnf.JKT),
			c.Cnf.X5T != "" && !isThumbprint(c.Cnf.X5T):
			return nil, tokenError(ErrInvalidToken, "access token cnf claim is malformed")
		}
		t.Cnf = *c.Cnf
	}
	return t, nil
}

// checkTimes enforces exp, nbf and iat against now within ClockSkew.
func checkTimes(t *Token, now time.Time) *refusal.Error {
	var e *refusal.Error
	switch {
	case !now.Before(t.Expiry.Add(ClockSkew)):
		e = tokenError(ErrExpired, "access token expired at %s", t.Expiry.UTC().Format(time.RFC3339))
	case now.Add(ClockSkew).Before(t.notBefore):
		e = tokenError(ErrInvalidToken, "access token is not valid before %s", t.notBefore.UTC().Format(time.RFC3339))
	case now.Add(ClockSkew).Before(t.IssuedAt):
		e = tokenError(ErrInvalidToken, "access token was issued in the future (%s)", t.IssuedAt.UTC().Format(time.RFC3339))
	default:
		return nil
	}
	e.JTI, e.TaskID = t.JTI, t.TaskID
	return e
}

var errTrailing = errors.New("trailing data after JSON object")

// decodeStrict decodes one JSON object into v, refusing unknown members and
// trailing data.
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errTrailing
	}
	return nil
}
