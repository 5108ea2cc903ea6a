// Package console is writ's web console, served at /ui/: an approvals inbox,
// tasks with their evidence timelines, the ledger's state and the policy
// versions. Pages are rendered on the server from embedded templates; the
// only script is a small same-origin file that refreshes the inbox.
//
// The console calls the same task service methods as the API, so the rules
// (roles, separation of duties, fail-closed recording) are the API's. People
// sign in with the OIDC authorization code flow with PKCE or, in dev mode,
// by picking a dev person; sessions live in server memory.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/witness"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Defaults of the session settings.
const (
	DefaultSessionTTL  = 8 * time.Hour
	DefaultIdleTimeout = 30 * time.Minute
)

// maxFormBytes bounds a console form post.
const maxFormBytes = 16 << 10

// Config is what the console needs from the server.
type Config struct {
	// Tasks is the task service: tasks, approvals, traces.
	Tasks *task.Service
	// Auth verifies the dev tokens minted at dev sign-in.
	Auth *identity.Authenticator
	// Store, Origin, Verifier and VerifierKey describe the ledger.
	Store       ledger.Store
	Origin      string
	Verifier    note.Verifier
	VerifierKey string
	// Policy is the active policy; Sources keeps every version's files.
	Policy  *policy.Policy
	Sources policy.SourceStore
	// Evidence, when set, writes a task's evidence bundle (a zip) to w;
	// the task page then offers it for download.
	Evidence func(ctx context.Context, taskID string, w io.Writer) error
	// Witnesses, when set, reads the witnesses' state and the newest
	// witnessed checkpoint for the Ledger page.
	Witnesses func(ctx context.Context) (*witness.Status, error)
	// Access, when set, builds the standing-access report shown on the
	// Access page.
	Access func(ctx context.Context, opts evidence.AccessOptions) (*evidence.AccessReport, error)
	// Dev offers the dev sign-in page; DataDir holds the dev issuer.
	Dev     bool
	DataDir string
	// Settings are the console's own settings; Identity supplies the role
	// mapping of the OIDC issuer when Settings.OIDC has none.
	Settings config.ConsoleConfig
	Identity config.IdentityConfig
	// Secure marks cookies Secure (the server speaks TLS or PublicURL is
	// https).
	Secure bool
	// HTTPClient talks to the OIDC provider; nil means a 15 s timeout client.
	HTTPClient *http.Client
	// Logger is the operational log; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Console serves the web console.
type Console struct {
	cfg         Config
	log         *slog.Logger
	now         func() time.Time
	secure      bool
	sessions    *sessions
	pages       map[string]*template.Template
	oidc        *oidcClient // nil without OIDC sign-in
	ledger      *ledgerState
	policyStats policyStats
	mux         *http.ServeMux
}

// New builds the console. It reads the OIDC client secret file, if any, but
// does not contact the provider until someone signs in.
func New(ctx context.Context, cfg Config) (*Console, error) {
	if cfg.Tasks == nil || cfg.Auth == nil || cfg.Store == nil {
		return nil, errors.New("console: tasks, auth and store are required")
	}
	if err := cfg.Settings.Validate(); err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, log: cfg.Logger, now: cfg.Now, secure: cfg.Secure}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	ttl, idle := cfg.Settings.SessionTTL, cfg.Settings.IdleTimeout
	if ttl == 0 {
		ttl = DefaultSessionTTL
	}
	if idle == 0 {
		idle = DefaultIdleTimeout
	}
	c.sessions = newSessions(ttl, idle, c.now)
	var err error
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if cfg.Settings.OIDC.Issuer != "" {
		if c.oidc, err = newOIDCClient(cfg.Settings.OIDC, cfg.Identity, cfg.HTTPClient); err != nil {
			return nil, err
		}
	}
	c.ledger = &ledgerState{}
	c.mux = c.routes()
	return c, nil
}

// ServeHTTP serves every path under /ui/.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if c.secure {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	c.mux.ServeHTTP(w, r)
}

// routes lists every console path.
func (c *Console) routes() *http.ServeMux {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/ui/static/", http.FileServerFS(static))
	mux.Handle("GET /ui/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))

	mux.HandleFunc("GET /ui/{$}", c.home)
	mux.HandleFunc("GET /ui/login", c.loginPage)
	mux.HandleFunc("POST /ui/login/dev", c.devSignIn)
	mux.HandleFunc("POST /ui/login/oidc", c.oidcStart)
	mux.HandleFunc("GET /ui/login/callback", c.oidcCallback)
	mux.HandleFunc("POST /ui/logout", c.signOut)

	anyone := []identity.Role{identity.RoleRequester, identity.RoleApprover, identity.RoleAuditor, identity.RoleAdmin}
	approver := []identity.Role{identity.RoleApprover}
	auditors := []identity.Role{identity.RoleAuditor, identity.RoleAdmin}
	enders := []identity.Role{identity.RoleRequester, identity.RoleAdmin}

	mux.Handle("GET /ui/inbox", c.page(approver, c.inbox))
	mux.Handle("GET /ui/inbox/state", c.page(approver, c.inboxState))
	mux.Handle("GET /ui/approvals/{id}", c.page(approver, c.approvalPage))
	mux.Handle("POST /ui/approvals/{id}", c.action(approver, c.decide))
	mux.Handle("GET /ui/tasks", c.page(anyone, c.taskList))
	mux.Handle("GET /ui/tasks/{id}", c.page(anyone, c.taskPage))
	mux.Handle("POST /ui/tasks/{id}/complete", c.action(enders, c.completeTask))
	mux.Handle("POST /ui/tasks/{id}/revoke", c.action(enders, c.revokeTask))
	mux.Handle("POST /ui/tasks/{id}/hold", c.action(auditors, c.holdTask))
	mux.Handle("POST /ui/tasks/{id}/release", c.action(auditors, c.releaseTask))
	mux.Handle("GET /ui/tasks/{id}/evidence", c.page(anyone, c.taskEvidence))
	mux.Handle("GET /ui/access", c.page(auditors, c.accessPage))
	mux.Handle("GET /ui/ledger", c.page(auditors, c.ledgerPage))
	mux.Handle("POST /ui/ledger/verify", c.action(auditors, c.verifyLedger))
	mux.Handle("GET /ui/policies", c.page(auditors, c.policiesPage))
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, nil, http.StatusNotFound, "Not found", "There is no console page at "+r.URL.Path+".")
	})
	return mux
}

// user is the request's signed-in session.
type user struct {
	id      string // the session cookie value
	session session
	p       identity.Principal
}

// page wraps a GET handler: signed in, holding one of roles.
func (c *Console) page(roles []identity.Role, fn func(http.ResponseWriter, *http.Request, user)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := c.signedIn(w, r)
		if !ok {
			return
		}
		if !u.p.HasAnyRole(roles...) {
			c.forbidden(w, r, u, roles)
			return
		}
		fn(w, r, u)
	})
}

// action wraps a form POST: same-origin, signed in, a valid CSRF token,
// holding one of roles. A post failing any of these changes nothing.
func (c *Console) action(roles []identity.Role, fn func(http.ResponseWriter, *http.Request, user)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ss, ok := c.sessionOf(r)
		if !ok || ss.principal == nil {
			c.errorPage(w, r, nil, http.StatusUnauthorized, "Signed out", "Your session has ended; sign in again.")
			return
		}
		u := user{id: id, session: ss, p: *ss.principal}
		if !c.checkPost(w, r, ss) {
			return
		}
		if !u.p.HasAnyRole(roles...) {
			c.forbidden(w, r, u, roles)
			return
		}
		fn(w, r, u)
	})
}

// checkPost refuses a post that is cross-site, oversized, or lacks the
// session's CSRF token, answering it itself.
func (c *Console) checkPost(w http.ResponseWriter, r *http.Request, ss session) bool {
	var u *user
	if ss.principal != nil {
		u = &user{session: ss, p: *ss.principal}
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		c.errorPage(w, r, u, http.StatusForbidden, "Refused", "Cross-site form posts are refused.")
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		c.errorPage(w, r, u, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return false
	}
	if !csrfOK(ss, r.PostForm.Get("csrf")) {
		c.log.WarnContext(r.Context(), "console: form post without a valid CSRF token refused", "path", r.URL.Path)
		c.errorPage(w, r, u, http.StatusForbidden, "Refused", "This form post has no valid CSRF token. Reload the page and try again.")
		return false
	}
	return true
}

// signedIn returns the signed-in user, or redirects to the sign-in page.
func (c *Console) signedIn(w http.ResponseWriter, r *http.Request) (user, bool) {
	id, ss, ok := c.sessionOf(r)
	if !ok || ss.principal == nil {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return user{}, false
	}
	return user{id: id, session: ss, p: *ss.principal}, true
}

func (c *Console) forbidden(w http.ResponseWriter, r *http.Request, u user, roles []identity.Role) {
	c.errorPage(w, r, &u, http.StatusForbidden, "Not allowed",
		fmt.Sprintf("This page needs one of the roles %v; you hold %v.", roles, u.p.Roles))
}

// home sends people to the page they most likely want.
func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	u, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	to := "/ui/tasks"
	if u.p.HasRole(identity.RoleApprover) {
		to = "/ui/inbox"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// flash stores a one-time message for the session's next page.
func (c *Console) flash(u user, msg string, isErr bool) {
	c.sessions.update(u.id, func(s *session) { s.flash, s.flashError = msg, isErr })
}

// takeFlash returns and clears the session's one-time message.
func (c *Console) takeFlash(u user) (string, bool) {
	var msg string
	var isErr bool
	c.sessions.update(u.id, func(s *session) {
		msg, isErr = s.flash, s.flashError
		s.flash, s.flashError = "", false
	})
	return msg, isErr
}
