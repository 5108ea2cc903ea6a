package credential

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/writhq/writ/internal/bearer"
)

// Sentinel errors. Every error this package returns for bad input is an
// *Error wrapping exactly one of them; match with errors.Is.
var (
	// ErrInvalidToken: the access token is malformed, not signed by this
	// issuer's key, for another issuer or audience, or not yet valid.
	ErrInvalidToken = errors.New("invalid access token")
	// ErrExpired: the access token's exp has passed.
	ErrExpired = errors.New("access token expired")
	// ErrRevoked: the access token, or its whole task, has been revoked.
	ErrRevoked = errors.New("access token revoked")
	// ErrBindingRequired: the token is a bearer token but policy requires a
	// sender-constrained (DPoP or mTLS) one.
	ErrBindingRequired = errors.New("sender-constrained token required")
	// ErrBindingMismatch: the token is bound (cnf) to a key or certificate
	// the request did not prove possession of.
	ErrBindingMismatch = errors.New("token binding mismatch")
	// ErrInvalidDPoPProof: the DPoP proof is missing where required,
	// malformed, stale, replayed or does not match the request.
	ErrInvalidDPoPProof = errors.New("invalid DPoP proof")
	// ErrInvalidRequest: a token-exchange request is malformed; the *Error's
	// Code says which OAuth error to answer with.
	ErrInvalidRequest = errors.New("invalid token request")
)

// OAuth 2.0 error codes (RFC 6749 §5.2, RFC 6750 §3.1, RFC 8693 §2.2.2,
// RFC 8707 §2, RFC 9449 §7.1).
const (
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidClient        = "invalid_client"
	CodeInvalidGrant         = "invalid_grant"
	CodeUnsupportedGrantType = "unsupported_grant_type"
	CodeInvalidScope         = "invalid_scope"
	CodeInvalidTarget        = "invalid_target"
	CodeInvalidToken         = "invalid_token"
	CodeInsufficientScope    = "insufficient_scope"
	CodeInvalidDPoPProof     = "invalid_dpop_proof"
)

// Error is a refusal. Description is safe to send to the caller and to log:
// it never holds a token, proof or key, and untrusted values in it are
// shortened and reduced to printable ASCII.
type Error struct {
	// Code is the OAuth error code to answer with.
	Code string
	// Description is a human-readable reason.
	Description string
	// JTI and TaskID are set when the token's signature verified, so they
	// are what writ issued (for auth.rejected events); empty otherwise.
	JTI    string
	TaskID string

	kind error
}

func (e *Error) Error() string { return e.kind.Error() + ": " + e.Description }

// Unwrap returns the sentinel error this refusal is an instance of.
func (e *Error) Unwrap() error { return e.kind }

func newError(kind error, code, format string, a ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, a...), kind: kind}
}

func tokenError(kind error, format string, a ...any) *Error {
	return newError(kind, CodeInvalidToken, format, a...)
}

func dpopError(format string, a ...any) *Error {
	return newError(ErrInvalidDPoPProof, CodeInvalidDPoPProof, format, a...)
}

func requestError(code, format string, a ...any) *Error {
	return newError(ErrInvalidRequest, code, format, a...)
}

// ErrorCode is the OAuth error code for err: the *Error's Code, or for a bare
// sentinel the code RFC 6750 or RFC 9449 gives it. Any other non-nil error
// maps to invalid_token, so an unexpected failure is still a refusal.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e.Code
	}
	switch {
	case errors.Is(err, ErrInvalidDPoPProof):
		return CodeInvalidDPoPProof
	case errors.Is(err, ErrInvalidRequest):
		return CodeInvalidRequest
	}
	return CodeInvalidToken
}

// HTTPStatus is the status to answer err with: 401 for token, DPoP and client
// authentication failures, 403 for insufficient_scope, 400 for the rest.
func HTTPStatus(err error) int {
	switch ErrorCode(err) {
	case CodeInvalidToken, CodeInvalidDPoPProof, CodeInvalidClient:
		return http.StatusUnauthorized
	case CodeInsufficientScope:
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

// Description is the caller-safe text of err: the *Error's Description, or a
// fixed phrase for anything else (whose text might not be safe to send).
func Description(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Description
	}
	return "request refused"
}

// Challenge is the WWW-Authenticate value answering a resource request that
// err refused (RFC 6750 §3, RFC 9449 §7.1). dpop selects the DPoP scheme,
// with the accepted proof algorithms: use it when the request used the DPoP
// scheme or err wraps ErrInvalidDPoPProof. A nil err gives the bare
// challenge for a request that sent no token.
func Challenge(err error, dpop bool) string {
	var b strings.Builder
	if dpop || errors.Is(err, ErrInvalidDPoPProof) {
		b.WriteString(`DPoP realm="writ", algs="` + DPoPAlgs + `"`)
	} else {
		b.WriteString(`Bearer realm="writ"`)
	}
	if err != nil {
		b.WriteString(`, error="` + ErrorCode(err) + `", error_description="` + bearer.Text(Description(err)) + `"`)
	}
	return b.String()
}
