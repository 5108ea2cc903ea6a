package credential

import (
	"errors"
	"strings"

	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/refusal"
)

// Sentinel errors. Every error this package returns for bad input is a
// *refusal.Error wrapping exactly one of them; match with errors.Is.
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
	// ErrInvalidRequest: a token-exchange request is malformed; the
	// refusal's OAuth code says which OAuth error to answer with.
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

// kindOf is the refusal kind of an OAuth error code at a resource: 401 for
// token, DPoP and client authentication failures, 403 for
// insufficient_scope, 400 for the rest.
func kindOf(code string) refusal.Kind {
	switch code {
	case CodeInvalidToken, CodeInvalidDPoPProof, CodeInvalidClient:
		return refusal.Unauthenticated
	case CodeInsufficientScope:
		return refusal.Forbidden
	}
	return refusal.Invalid
}

// newError is a refusal wrapping sentinel whose Code and OAuth code are
// code. Its Detail is safe to send to the caller and to log: it never holds
// a token, proof or key, and untrusted values in it are shortened and
// reduced to printable ASCII (bearer.Claim).
func newError(sentinel error, code, format string, a ...any) *refusal.Error {
	e := refusal.New(kindOf(code), sentinel, code, format, a...)
	e.OAuth = code
	return e
}

func tokenError(sentinel error, format string, a ...any) *refusal.Error {
	return newError(sentinel, CodeInvalidToken, format, a...)
}

func dpopError(format string, a ...any) *refusal.Error {
	return newError(ErrInvalidDPoPProof, CodeInvalidDPoPProof, format, a...)
}

func requestError(code, format string, a ...any) *refusal.Error {
	return newError(ErrInvalidRequest, code, format, a...)
}

// Refusal is err as the refusal this package answers it with: err itself
// when it carries an OAuth code, else one whose code is the one RFC 6750 or
// RFC 9449 gives the sentinel err wraps (invalid_token for anything else,
// so an unexpected failure is still a refusal) and whose detail is err's
// refusal detail or a fixed phrase (the text of another error might not be
// safe to send). The refusal wraps err.
func Refusal(err error) *refusal.Error {
	e, ok := refusal.As(err)
	if ok && e.OAuth != "" {
		return e
	}
	code := CodeInvalidToken
	switch {
	case errors.Is(err, ErrInvalidDPoPProof):
		code = CodeInvalidDPoPProof
	case errors.Is(err, ErrInvalidRequest):
		code = CodeInvalidRequest
	}
	out := newError(err, code, "request refused")
	if ok {
		out.Detail, out.JTI, out.TaskID = e.Detail, e.JTI, e.TaskID
	}
	return out
}

// ErrorCode is the OAuth error code for err (Refusal's); "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	return Refusal(err).OAuth
}

// Description is the caller-safe text of err (Refusal's).
func Description(err error) string { return Refusal(err).Detail }

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
