// Package refusal is the one shape of a refused request in writ. The task
// service, the credential layer and the identity layer return an *Error
// when they refuse: its Kind says what sort of refusal it is, its Code is a
// stable machine-readable reason (recorded in auth.rejected events and
// answered as the JSON body's "error"), and its Detail a sentence safe to
// send to the caller. Each package keeps its sentinel errors, which the
// *Error wraps, so errors.Is works across layers.
//
// The HTTP edges (the API server, the MCP gateway, the HTTP proxy) answer a
// refusal with the status its Kind maps to (Kind.HTTPStatus), the only
// place writ turns a refusal into a status. The OAuth token endpoint is the
// exception the RFCs make: it answers 400, or 401 for invalid_client
// (RFC 6749 §5.2), whatever the kind. The codes writ answers, and their
// statuses, are listed in docs/errors.md.
package refusal

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind is what sort of refusal an Error is. The zero Kind is not a
// refusal: HTTPStatus answers it as an internal error.
type Kind uint8

// Kinds, each with the HTTP status it is answered with.
const (
	// Invalid: the request is malformed or out of bounds (400).
	Invalid Kind = iota + 1
	// Unauthenticated: no credentials, or credentials that are not (or no
	// longer) good: a bad token, an ended task, a revoked credential (401).
	Unauthenticated
	// Forbidden: the caller is known but may not do this (403).
	Forbidden
	// NotFound: no such thing, or none the caller may see (404).
	NotFound
	// Conflict: the thing is not in a state that allows this (409).
	Conflict
	// TooLarge: the request body is larger than the limit (413).
	TooLarge
	// UnsupportedMediaType: the body's Content-Type or encoding is not one
	// writ takes (415).
	UnsupportedMediaType
	// RateLimited: the caller is past a rate limit (429).
	RateLimited
	// Internal: writ failed in a way the caller cannot fix (500).
	Internal
	// UpstreamFailed: the upstream a request was forwarded to did not
	// answer, or the request could not be sent to it (502).
	UpstreamFailed
	// Unavailable: writ cannot decide or record durably now; nothing was
	// allowed or acknowledged (503).
	Unavailable
)

var kinds = [...]struct {
	name   string
	status int
}{
	Invalid:              {"invalid", http.StatusBadRequest},
	Unauthenticated:      {"unauthenticated", http.StatusUnauthorized},
	Forbidden:            {"forbidden", http.StatusForbidden},
	NotFound:             {"not_found", http.StatusNotFound},
	Conflict:             {"conflict", http.StatusConflict},
	TooLarge:             {"too_large", http.StatusRequestEntityTooLarge},
	UnsupportedMediaType: {"unsupported_media_type", http.StatusUnsupportedMediaType},
	RateLimited:          {"rate_limited", http.StatusTooManyRequests},
	Internal:             {"internal", http.StatusInternalServerError},
	UpstreamFailed:       {"upstream_failed", http.StatusBadGateway},
	Unavailable:          {"unavailable", http.StatusServiceUnavailable},
}

// String names the kind as docs/errors.md does ("not_found").
func (k Kind) String() string {
	if int(k) < len(kinds) && kinds[k].name != "" {
		return kinds[k].name
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// HTTPStatus is the status a refusal of kind k is answered with; the zero
// or an unknown Kind is 500.
func (k Kind) HTTPStatus() int {
	if int(k) < len(kinds) && kinds[k].status != 0 {
		return kinds[k].status
	}
	return http.StatusInternalServerError
}

// Error is a refusal. Its text fields never hold a token, proof, key or
// other secret, and untrusted values quoted in Detail are shortened and
// reduced to printable ASCII by the package that refused.
type Error struct {
	Kind Kind
	// Code is the stable machine-readable reason ("self_approval",
	// "bad_signature", "invalid_token"): recorded in auth.rejected and
	// matched by auditors and alerts.
	Code string
	// Detail is a sentence for the caller.
	Detail string
	// OAuth is the OAuth 2.0 error code (RFC 6749 §5.2, RFC 6750 §3.1,
	// RFC 9449 §7.1) the refusal is answered with where OAuth rules apply:
	// in a WWW-Authenticate challenge and at the token endpoint. Empty when
	// no OAuth code fits, such as for a request without credentials,
	// which gets the bare challenge.
	OAuth string
	// JTI and TaskID are the refused writ access token's, set only when its
	// signature verified (so they are what writ issued).
	JTI, TaskID string
	// Issuer and Subject are what a refused identity token claimed
	// (unverified, for the record, never for decisions), and Fingerprint
	// the hex SHA-256 of the token or certificate presented.
	Issuer, Subject, Fingerprint string
	// Err is the sentinel error of the refusing package that this refusal
	// is an instance of (task.ErrForbidden, credential.ErrExpired…).
	Err error
}

// New returns a refusal of kind with code and a Detail formatted from
// format and a, wrapping sentinel (which may be nil).
func New(kind Kind, sentinel error, code, format string, a ...any) *Error {
	return &Error{Kind: kind, Code: code, Detail: fmt.Sprintf(format, a...), Err: sentinel}
}

// Error is "code: detail".
func (e *Error) Error() string { return e.Code + ": " + e.Detail }

// Unwrap returns the sentinel, so errors.Is(err, task.ErrForbidden) works.
func (e *Error) Unwrap() error { return e.Err }

// As returns the refusal err is or wraps, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// HTTPStatus is the status err is answered with: its refusal's kind's, or
// 500 when err is not a refusal.
func HTTPStatus(err error) int {
	if e, ok := As(err); ok {
		return e.Kind.HTTPStatus()
	}
	return http.StatusInternalServerError
}
