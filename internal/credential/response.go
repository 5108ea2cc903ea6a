package credential

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/refusal"
)

// tokenResponse is the RFC 8693 §2.2.1 success body.
type tokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope"`
}

// oauthError is the RFC 6749 §5.2 error body.
type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// WriteToken answers a successful exchange with status 200 and the RFC 8693
// response: access_token, issued_token_type access_token, token_type "DPoP"
// when the token is DPoP-bound (dpop true) and "Bearer" otherwise (an
// mTLS-bound token is still "Bearer", RFC 8705 §3), expires_in in whole
// seconds, and scope. Responses carry Cache-Control: no-store.
func WriteToken(w http.ResponseWriter, token string, expiresIn time.Duration, scope string, dpop bool) {
	typ := "Bearer"
	if dpop {
		typ = "DPoP"
	}
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: token, IssuedTokenType: TokenTypeAccessToken, TokenType: typ,
		ExpiresIn: int64(expiresIn / time.Second), Scope: scope,
	})
}

// WriteOAuthError answers with status and the RFC 6749 §5.2 body
// {"error": code, "error_description": description}. The description is
// reduced to the characters RFC 6749 allows. For errors from this package
// use WriteError, which picks status, code and description.
func WriteOAuthError(w http.ResponseWriter, status int, code, description string) {
	if code == "" {
		code = CodeInvalidRequest
	}
	writeJSON(w, status, oauthError{Error: bearer.Text(code), ErrorDescription: bearer.Text(description)})
}

// WriteError answers err (from ParseExchange, Verify, VerifyDPoP or
// CheckBinding) at a resource, in the OAuth shape: the status of its
// refusal's kind, ErrorCode(err) and Description(err).
func WriteError(w http.ResponseWriter, err error) {
	e := Refusal(err)
	WriteOAuthError(w, e.Kind.HTTPStatus(), e.OAuth, e.Detail)
}

// WriteExchangeError answers a failed token exchange with the status RFC
// 6749 §5.2 gives, whatever the refusal's kind: 400, or 401 for
// invalid_client (a refusal of kind internal or unavailable is the server's
// failure, answered 500 or 503). A refused subject or actor token (an error from
// Issuer.Verify or CheckBinding), and a refusal without an OAuth code (the
// task service's), become invalid_grant, and a refused DPoP proof stays
// invalid_dpop_proof (RFC 9449 §5). Use it at /oauth2/token instead of
// WriteError, whose statuses are for resource requests.
//
// An error that is not a refusal (a store failure, say) is answered 500
// server_error without its text.
func WriteExchangeError(w http.ResponseWriter, err error) {
	if _, ok := refusal.As(err); !ok {
		WriteOAuthError(w, http.StatusInternalServerError, "server_error", "internal error")
		return
	}
	e := Refusal(err)
	code := e.OAuth
	if code == CodeInvalidToken {
		code = CodeInvalidGrant
	}
	status := http.StatusBadRequest
	switch {
	case code == CodeInvalidClient:
		status = http.StatusUnauthorized
	case e.Kind == refusal.Internal || e.Kind == refusal.Unavailable:
		status = e.Kind.HTTPStatus() // server_error, temporarily_unavailable
	}
	WriteOAuthError(w, status, code, e.Detail)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
