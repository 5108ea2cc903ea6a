package identity

import (
	"errors"
	"fmt"

	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/refusal"
)

// Reason names why a caller was refused. Reasons are recorded in auth.rejected
// events and are stable: auditors and alerts match on them.
type Reason string

// Refusal reasons.
const (
	ReasonNoCredentials     Reason = "no_credentials"       // nothing was presented
	ReasonBadRequest        Reason = "malformed_request"    // Authorization header unusable
	ReasonOversized         Reason = "token_too_large"      // longer than max_token_bytes
	ReasonMalformed         Reason = "malformed_token"      // not a compact JWS JWT
	ReasonAlgorithm         Reason = "disallowed_algorithm" // none, HMAC, or unknown alg
	ReasonUnknownIssuer     Reason = "unknown_issuer"       // no configured issuer or trust domain
	ReasonWrongTrustDomain  Reason = "untrusted_trust_domain"
	ReasonUnknownKey        Reason = "unknown_key" // kid not in the trust bundle
	ReasonBadSignature      Reason = "bad_signature"
	ReasonExpired           Reason = "expired"
	ReasonNotYetValid       Reason = "not_yet_valid" // nbf or iat in the future
	ReasonWrongAudience     Reason = "wrong_audience"
	ReasonMissingClaim      Reason = "missing_claim"
	ReasonInvalidSVID       Reason = "invalid_svid"       // X.509-SVID failed verification
	ReasonKeysUnavailable   Reason = "keys_unavailable"   // issuer's keys could not be fetched
	ReasonInsufficientScope Reason = "insufficient_scope" // authenticated, lacks the role
)

// Sentinel errors. Every refusal this package returns is a *refusal.Error
// whose Code is a Reason and which wraps one of these; match with errors.Is.
var (
	// ErrNoCredentials means the request carried no bearer token and no client
	// certificate.
	ErrNoCredentials = errors.New("no credentials")
	// ErrInvalidToken means credentials were presented and refused: every
	// reason but no_credentials, malformed_request and insufficient_scope.
	ErrInvalidToken = errors.New("invalid token")
	// ErrInvalidRequest means the Authorization header could not be used.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrInsufficientScope means the principal lacks the role asked for.
	ErrInsufficientScope = errors.New("insufficient scope")
)

// refuse is a refusal for reason r: its Code is r, and r decides its kind
// (400 for malformed_request, 403 for insufficient_scope, 401 otherwise),
// its RFC 6750 error code (none for no_credentials, which gets the bare
// challenge) and the sentinel it wraps. Detail is safe to return to the
// caller: it never contains the token, and attacker-controlled claim values
// in it are truncated and stripped to printable ASCII. Callers set Issuer,
// Subject and Fingerprint (the claimed, unverified iss and sub, for the
// ledger) when the token could be parsed far enough.
func refuse(r Reason, format string, a ...any) *refusal.Error {
	kind, sentinel, code := refusal.Unauthenticated, ErrInvalidToken, "invalid_token"
	switch r {
	case ReasonNoCredentials:
		sentinel, code = ErrNoCredentials, ""
	case ReasonBadRequest:
		kind, sentinel, code = refusal.Invalid, ErrInvalidRequest, "invalid_request"
	case ReasonInsufficientScope:
		kind, sentinel, code = refusal.Forbidden, ErrInsufficientScope, "insufficient_scope"
	}
	e := refusal.New(kind, sentinel, string(r), format, a...)
	e.OAuth = code
	return e
}

// Refusal is err as the refusal this package answers it with: err's own,
// or for any other error a malformed_token refusal with a fixed detail, so
// an unexpected failure is still a 401 invalid_token (fail closed).
func Refusal(err error) *refusal.Error {
	if e, ok := refusal.As(err); ok {
		return e
	}
	return refuse(ReasonMalformed, "credentials refused")
}

// Challenge is the WWW-Authenticate value answering err (RFC 6750 §3).
func Challenge(err error) string {
	e := Refusal(err)
	if e.OAuth == "" {
		return `Bearer realm="writ"`
	}
	return fmt.Sprintf(`Bearer realm="writ", error="%s", error_description="%s"`, e.OAuth, bearer.Text(e.Detail))
}
