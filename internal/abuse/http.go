package abuse

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/httpjson"
	"github.com/writhq/writ/internal/refusal"
)

// TokenPath is the OAuth token endpoint: its credentials are in the body,
// and its refusals take the OAuth error shape (RFC 6749 §5.2).
const TokenPath = "/oauth2/token"

// exempt are the health checks: probes must see the truth however busy
// the server is, and they cost nothing.
func exempt(r *http.Request) bool {
	return r.URL.Path == "/healthz" || r.URL.Path == "/readyz"
}

// presents reports whether r carries a credential to check: an
// Authorization header, a TLS client certificate, or a token exchange.
func presents(r *http.Request) bool {
	return len(r.Header.Values("Authorization")) > 0 ||
		(r.TLS != nil && len(r.TLS.PeerCertificates) > 0) ||
		r.URL.Path == TokenPath
}

// Middleware limits every request but the health checks before next sees
// it, and tells next's layers the client address (SourceFrom). A request
// without a credential takes a token from its address's unauthenticated
// bucket; one with a credential is refused unchecked while its address's
// failed bucket is empty (the refusal counted into the address's
// summary), else goes on to be charged to its principal once verified
// (Admit), or to its address's failed bucket once refused (Reject).
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if exempt(r) {
			next.ServeHTTP(w, r)
			return
		}
		src, now := l.Source(r), l.now()
		r = r.WithContext(WithSource(r.Context(), src))
		if presents(r) {
			if empty, wait := l.failed.empty(src, now); empty {
				l.stats.limitedFailed.Add(1)
				l.rej.fold(src, RateLimited, now, false)
				refuse(w, r, wait, "too many refused credentials from this address")
				return
			}
		} else if ok, wait := l.unauth.take(src, now); !ok {
			l.stats.limitedUnauth.Add(1)
			refuse(w, r, wait, "too many requests without credentials from this address")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refuse answers 429 with Retry-After (whole seconds, at least 1) and the
// JSON error body: {"error": "rate_limited", "detail": …}, or at the token
// endpoint the OAuth shape {"error": "rate_limited", "error_description":
// …}.
func refuse(w http.ResponseWriter, r *http.Request, wait time.Duration, why string) {
	secs := int64(math.Ceil(wait.Seconds()))
	secs = max(1, min(secs, 3600))
	detail := why + "; retry after " + strconv.FormatInt(secs, 10) + "s"
	h := w.Header()
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
	h.Set("Cache-Control", "no-store")
	if r.URL.Path == TokenPath {
		httpjson.Write(w, refusal.RateLimited.HTTPStatus(), struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}{RateLimited, bearer.Text(detail)})
		return
	}
	httpjson.Error(w, refusal.RateLimited, RateLimited, detail)
}
