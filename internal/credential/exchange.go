package credential

import (
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// RFC 8693 identifiers.
const (
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	// TokenTypeJWT is an agent identity token: a JWT-SVID or OIDC ID token.
	TokenTypeJWT = "urn:ietf:params:oauth:token-type:jwt"
	// TokenTypeAccessToken is a writ access token (for delegation) and the
	// type of every token writ issues.
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// ScopePrefix starts the only scope writ issues: "task:<task id>".
const ScopePrefix = "task:"

// MaxExchangeBytes bounds a token-exchange request body.
const MaxExchangeBytes = 64 << 10

// ExchangeRequest is a parsed RFC 8693 token-exchange request. Its tokens are
// unverified: the task service verifies SubjectToken (and ActorToken) with
// package identity or Issuer.Verify before anything else. Printing or
// logging an ExchangeRequest redacts the tokens.
type ExchangeRequest struct {
	// SubjectToken and SubjectTokenType: the agent's own identity token
	// (TokenTypeJWT), or for delegation the parent's writ access token
	// (TokenTypeAccessToken).
	SubjectToken     string
	SubjectTokenType string
	// ActorToken and ActorTokenType: for delegation only, the child agent's
	// identity token (TokenTypeJWT). Empty otherwise.
	ActorToken     string
	ActorTokenType string
	// TaskID is the task named by Scope "task:<id>".
	TaskID string
	// Audience and Resource are the optional RFC 8693 audience and RFC 8707
	// resource parameters (each may repeat). writ issues tokens only for its
	// own audience; the task service answers invalid_target for others.
	Audience []string
	Resource []string
}

// Delegation reports whether the request asks for a child token: a writ
// access token as subject, acted on by another agent.
func (r ExchangeRequest) Delegation() bool { return r.SubjectTokenType == TokenTypeAccessToken }

// String describes r without its tokens.
func (r ExchangeRequest) String() string {
	return fmt.Sprintf("token exchange for task %q (subject %s, actor %s, audience %q, resource %q)",
		r.TaskID, redacted(r.SubjectToken, r.SubjectTokenType), redacted(r.ActorToken, r.ActorTokenType), r.Audience, r.Resource)
}

// GoString is String, so %#v does not print the tokens either.
func (r ExchangeRequest) GoString() string { return r.String() }

// LogValue keeps the tokens out of slog output.
func (r ExchangeRequest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("task_id", r.TaskID),
		slog.String("subject_token_type", r.SubjectTokenType),
		slog.String("actor_token_type", r.ActorTokenType),
		slog.Any("audience", r.Audience),
		slog.Any("resource", r.Resource),
	)
}

func redacted(tok, typ string) string {
	if tok == "" {
		return "none"
	}
	return fmt.Sprintf("%s (%d bytes, redacted)", typ, len(tok))
}

// singleParams may appear at most once (RFC 6749 §3.2).
var singleParams = []string{
	"grant_type", "subject_token", "subject_token_type", "actor_token",
	"actor_token_type", "scope", "requested_token_type",
}

// ParseExchange reads a token-exchange request from r: a POST with an
// application/x-www-form-urlencoded body of at most MaxExchangeBytes, no
// query string (tokens do not belong in URLs), grant_type token-exchange,
// subject_token and subject_token_type, scope exactly "task:<id>", and for
// delegation (subject_token_type access_token) an actor_token of type jwt.
// requested_token_type, if sent, must be access_token. Every refusal wraps
// ErrInvalidRequest and carries the OAuth code to answer with
// (invalid_request, unsupported_grant_type, invalid_scope or invalid_target).
// Refusals never echo a submitted value: a token pasted into the wrong
// parameter must not reach logs through the error text.
func ParseExchange(r *http.Request) (ExchangeRequest, error) {
	var x ExchangeRequest
	if r.Method != http.MethodPost {
		return x, requestError(CodeInvalidRequest, "the token endpoint accepts only POST")
	}
	if r.URL != nil && r.URL.RawQuery != "" {
		return x, requestError(CodeInvalidRequest, "parameters belong in the request body, not the URL")
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return x, requestError(CodeInvalidRequest, "Content-Type must be application/x-www-form-urlencoded")
	}
	if r.Body == nil {
		return x, requestError(CodeInvalidRequest, "empty request body")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxExchangeBytes+1))
	if err != nil {
		return x, requestError(CodeInvalidRequest, "reading the request body failed")
	}
	if len(body) > MaxExchangeBytes {
		return x, requestError(CodeInvalidRequest, "request body exceeds %d bytes", MaxExchangeBytes)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return x, requestError(CodeInvalidRequest, "request body is not valid form encoding")
	}
	return parseExchangeForm(form)
}

func parseExchangeForm(form url.Values) (ExchangeRequest, error) {
	var x ExchangeRequest
	for _, p := range singleParams {
		if len(form[p]) > 1 {
			return x, requestError(CodeInvalidRequest, "parameter %s appears more than once", p)
		}
	}
	switch gt := form.Get("grant_type"); gt {
	case GrantTypeTokenExchange:
	case "":
		return x, requestError(CodeInvalidRequest, "grant_type is required")
	default:
		return x, requestError(CodeUnsupportedGrantType, "grant_type is not supported; use %s", GrantTypeTokenExchange)
	}
	x.SubjectToken, x.SubjectTokenType = form.Get("subject_token"), form.Get("subject_token_type")
	x.ActorToken, x.ActorTokenType = form.Get("actor_token"), form.Get("actor_token_type")
	switch {
	case x.SubjectToken == "":
		return x, requestError(CodeInvalidRequest, "subject_token is required")
	case x.SubjectTokenType == "":
		return x, requestError(CodeInvalidRequest, "subject_token_type is required")
	case x.SubjectTokenType != TokenTypeJWT && x.SubjectTokenType != TokenTypeAccessToken:
		return x, requestError(CodeInvalidRequest, "subject_token_type is not supported; use %s, or %s for delegation", TokenTypeJWT, TokenTypeAccessToken)
	case (x.ActorToken == "") != (x.ActorTokenType == ""):
		return x, requestError(CodeInvalidRequest, "actor_token and actor_token_type go together")
	case x.SubjectTokenType == TokenTypeJWT && x.ActorToken != "":
		return x, requestError(CodeInvalidRequest, "actor_token is only for delegation, with a writ access token as subject_token")
	case x.SubjectTokenType == TokenTypeAccessToken && x.ActorToken == "":
		return x, requestError(CodeInvalidRequest, "delegation needs actor_token: the identity token of the agent the child task is for")
	case x.ActorToken != "" && x.ActorTokenType != TokenTypeJWT:
		return x, requestError(CodeInvalidRequest, "actor_token_type is not supported; use %s", TokenTypeJWT)
	}
	if rt := form.Get("requested_token_type"); rt != "" && rt != TokenTypeAccessToken {
		return x, requestError(CodeInvalidRequest, "requested_token_type is not supported; writ issues %s", TokenTypeAccessToken)
	}
	id, err := ParseScope(form.Get("scope"))
	if err != nil {
		return x, err
	}
	x.TaskID = id
	x.Audience = form["audience"]
	for _, a := range x.Audience {
		if a == "" {
			return x, requestError(CodeInvalidTarget, "audience is empty")
		}
	}
	x.Resource = form["resource"]
	for _, res := range x.Resource {
		u, err := url.Parse(res)
		if err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(res, "#") {
			return x, requestError(CodeInvalidTarget, "resource must be an absolute URI without a fragment")
		}
	}
	return x, nil
}

// ParseScope returns the task id of a scope "task:<id>". Any other scope,
// including several space-separated values, is invalid_scope.
func ParseScope(scope string) (string, error) {
	if scope == "" {
		return "", requestError(CodeInvalidScope, "scope is required: task:<task id>")
	}
	id, ok := strings.CutPrefix(scope, ScopePrefix)
	if !ok || !ValidTaskID(id) {
		return "", requestError(CodeInvalidScope, "scope must be exactly task:<task id>")
	}
	return id, nil
}

// ValidTaskID reports whether id can name a task in a scope: 1 to 128 of
// A-Z a-z 0-9 . _ ~ - (URI unreserved characters, RFC 3986 §2.3).
func ValidTaskID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for k := 0; k < len(id); k++ {
		c := id[k]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == '~', c == '-':
		default:
			return false
		}
	}
	return true
}
