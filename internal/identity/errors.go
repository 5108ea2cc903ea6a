package identity

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/writhq/writ/internal/bearer"
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

// Sentinel errors, matched with errors.Is on an *Error.
var (
	// ErrNoCredentials means the request carried no bearer token and no client
	// certificate.
	ErrNoCredentials = errors.New("no credentials")
	// ErrInvalidToken means credentials were presented and refused.
	ErrInvalidToken = errors.New("invalid token")
	// ErrInvalidRequest means the Authorization header could not be used.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrInsufficientScope means the principal lacks the role asked for.
	ErrInsufficientScope = errors.New("insufficient scope")
)

// Error is a refusal. Detail is safe to return to the caller: it never
// contains the token, and attacker-controlled claim values in it are
// truncated and stripped to printable ASCII.
type Error struct {
	Reason Reason
	Detail string
	// Issuer and Subject are the claimed (unverified) iss and sub, when the
	// token could be parsed far enough; for the ledger, not for decisions.
	Issuer  string
	Subject string
	// Fingerprint is the hex SHA-256 of the presented token or certificate.
	Fingerprint string
}

func (e *Error) Error() string { return string(e.Reason) + ": " + e.Detail }

// Is maps reasons to the sentinels above.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNoCredentials:
		return e.Reason == ReasonNoCredentials
	case ErrInvalidRequest:
		return e.Reason == ReasonBadRequest
	case ErrInsufficientScope:
		return e.Reason == ReasonInsufficientScope
	case ErrInvalidToken:
		switch e.Reason {
		case ReasonNoCredentials, ReasonBadRequest, ReasonInsufficientScope:
			return false
		}
		return true
	}
	return false
}

func refuse(r Reason, format string, a ...any) *Error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, a...)}
}

// HTTPStatus is the status code for err: 401, 400 or 403. Any error that is
// not an *Error is a 401 invalid_token (fail closed).
func HTTPStatus(err error) int {
	switch {
	case errors.Is(err, ErrInsufficientScope):
		return http.StatusForbidden
	case errors.Is(err, ErrInvalidRequest):
		return http.StatusBadRequest
	}
	return http.StatusUnauthorized
}

// errorCode is the RFC 6750 error code for err, empty when no credentials were
// sent.
func errorCode(err error) string {
	switch {
	case errors.Is(err, ErrNoCredentials):
		return ""
	case errors.Is(err, ErrInsufficientScope):
		return "insufficient_scope"
	case errors.Is(err, ErrInvalidRequest):
		return "invalid_request"
	}
	return "invalid_token"
}

// Challenge is the WWW-Authenticate value answering err (RFC 6750 §3).
func Challenge(err error) string {
	code := errorCode(err)
	if code == "" {
		return `Bearer realm="writ"`
	}
	return fmt.Sprintf(`Bearer realm="writ", error="%s", error_description="%s"`, code, bearer.Text(detailOf(err)))
}

func detailOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Detail
	}
	return "credentials refused"
}
