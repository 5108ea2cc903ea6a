package identity

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"

	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/refusal"
)

// Limits bounds how often callers are served and which refusals are
// recorded one by one (the server's abuse.Limiter).
type Limits interface {
	// Admit reports whether the verified principal may be served now;
	// when not, it has answered the request (429).
	Admit(w http.ResponseWriter, r *http.Request, principal string) bool
	// Reject accounts for a refusal with the given reason and records it
	// with write when it is to be recorded one by one; an error means the
	// record is not durable. The refusal stands either way.
	Reject(ctx context.Context, reason string, write func(context.Context) error) error
}

// RequireRole returns middleware that authenticates each request, requires one
// of roles (none: any authenticated principal), and passes the principal to
// next in the request context (read it with PrincipalFrom). A refusal is
// answered with 401, 400 or 403, an RFC 6750 WWW-Authenticate challenge and a
// JSON body {"error": code, "detail": text}, and recorded as auth.rejected
// as Limits allows (a request with no credential is only counted). A
// principal past its rate limit is answered 429 by Limits.
func (a *Authenticator) RequireRole(roles ...Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			p, err := a.Authenticate(ctx, r)
			if err == nil && !p.HasAnyRole(roles...) {
				e := refuse(ReasonInsufficientScope, "requires role %s", joinRoles(roles))
				e.Issuer, e.Subject, e.Fingerprint = p.Issuer, p.Subject, p.Fingerprint
				a.reject(ctx, w, r, e, &p, roles)
				return
			}
			if err != nil {
				a.reject(ctx, w, r, err, nil, roles)
				return
			}
			if a.limits != nil && !a.limits.Admit(w, r, p.ID) {
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(ctx, p)))
		})
	}
}

func joinRoles(roles []Role) string { return strings.Join(roleNames(roles), " or ") }

// roleNames returns roles as strings.
func roleNames(roles []Role) []string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return s
}

// reject records err and writes the HTTP refusal. p is the verified principal
// for 403s, nil otherwise. The refusal is sent even if recording fails.
func (a *Authenticator) reject(ctx context.Context, w http.ResponseWriter, r *http.Request, err error, p *Principal, roles []Role) {
	e := Refusal(err)
	a.record(ctx, r, e, p, roles)
	WriteError(w, e)
}

func (a *Authenticator) record(ctx context.Context, r *http.Request, e *refusal.Error, p *Principal, roles []Role) {
	if a.rec == nil {
		return
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	// The event never holds the token: only its SHA-256 fingerprint.
	data := event.RequestRejected{
		Reason: e.Code, Detail: e.Detail,
		Issuer: e.Issuer, Subject: e.Subject, TokenSHA256: e.Fingerprint,
		RemoteAddr: host, Method: r.Method, Path: bearer.Claim(r.URL.Path),
		RequiredRoles: roleNames(roles),
	}
	ev := ledger.Event{Type: ledger.TypeAuthRejected, Time: a.now().UTC()}
	if p != nil {
		data.SubjectVerified = true
		data.PrincipalRoles = roleNames(p.Roles)
		ev.JTI = p.JTI
		if p.Kind == KindAgent {
			ev.Agent = p.ID
		} else {
			ev.Principal = p.ID
		}
	}
	ev.Data, _ = json.Marshal(data) // plain struct of strings: cannot fail
	write := func(ctx context.Context) error {
		_, err := a.rec.Append(ctx, ev)
		return err
	}
	if a.limits != nil {
		// Limits counts, logs and summarizes a failed record itself.
		_ = a.limits.Reject(ctx, e.Code, write)
		return
	}
	if err := write(ctx); err != nil {
		a.log.ErrorContext(ctx, "recording auth.rejected failed", "reason", e.Code, "error", err)
	}
}

// WriteError writes the HTTP answer for an authentication or authorization
// error: status, WWW-Authenticate challenge and JSON body. Handlers that
// authenticate by other means use it to answer the same way.
func WriteError(w http.ResponseWriter, err error) {
	e := Refusal(err)
	body := struct {
		Error  string `json:"error"`
		Detail string `json:"detail"`
	}{Error: e.OAuth, Detail: bearer.Text(e.Detail)}
	if e.OAuth == "" {
		body.Error = "unauthorized"
	}
	h := w.Header()
	h.Set("WWW-Authenticate", Challenge(err))
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(e.Kind.HTTPStatus())
	_ = json.NewEncoder(w).Encode(body)
}
