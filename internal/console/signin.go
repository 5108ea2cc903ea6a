package console

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"

	"github.com/writhq/writ/internal/identity"
)

// devPeople are the people offered on the dev sign-in page, with the roles
// ticked for them by default. Any other name may be typed in.
var devPeople = []devPerson{
	{"alice", []identity.Role{identity.RoleRequester}},
	{"bob", []identity.Role{identity.RoleApprover}},
	{"carol", []identity.Role{identity.RoleApprover}},
	{"dana", []identity.Role{identity.RoleAuditor}},
	{"erin", []identity.Role{identity.RoleAdmin, identity.RoleAuditor}},
}

type devPerson struct {
	Name  string
	Roles []identity.Role
}

// RoleList is the person's default roles, space separated, for the page
// script that ticks them.
func (p devPerson) RoleList() string {
	s := make([]string, len(p.Roles))
	for i, r := range p.Roles {
		s[i] = string(r)
	}
	return strings.Join(s, " ")
}

// loginBody is the sign-in page's data.
type loginBody struct {
	Dev    bool
	People []devPerson
	Roles  []identity.Role
	OIDC   string // the issuer, when OIDC sign-in is configured
	Error  string
}

// loginPage shows the sign-in choices. It starts an anonymous session to
// carry the form's CSRF token (and, later, the OIDC state).
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.showLogin(w, r, http.StatusOK, "")
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	id, ss, ok := c.sessionOf(r)
	if !ok {
		var s *session
		id, s, ok = c.sessions.create(nil)
		if !ok {
			c.errorPage(w, r, nil, http.StatusServiceUnavailable, "Busy", "Too many sign-ins in progress; try again shortly.")
			return
		}
		ss = *s
		c.setCookie(w, id, ss.expires)
	}
	body := loginBody{Dev: c.cfg.Dev, People: devPeople, Roles: identity.AllRoles, Error: msg}
	if c.oidc != nil {
		body.OIDC = c.oidc.cfg.Issuer
	}
	u := &user{id: id, session: ss}
	if ss.principal != nil {
		u.p = *ss.principal
	}
	c.render(w, r, u, status, "login", "Sign in", "login", body)
}

// anonPost checks a sign-in form post: a live session (signed in or not)
// and its CSRF token. It answers refusals itself.
func (c *Console) anonPost(w http.ResponseWriter, r *http.Request) (string, session, bool) {
	id, ss, ok := c.sessionOf(r)
	if !ok {
		c.errorPage(w, r, nil, http.StatusForbidden, "Refused", "This form post has no valid session; reload the sign-in page.")
		return "", session{}, false
	}
	if !c.checkPost(w, r, ss) {
		return "", session{}, false
	}
	return id, ss, true
}

// devSignIn signs in as a dev person: it mints a dev token for the chosen
// name and roles and verifies it as the API would, so the session's
// principal is exactly what a bearer of that token would be.
func (c *Console) devSignIn(w http.ResponseWriter, r *http.Request) {
	if !c.cfg.Dev {
		c.errorPage(w, r, nil, http.StatusNotFound, "Not found", "Dev sign-in is only offered by a server started with --dev.")
		return
	}
	oldID, _, ok := c.anonPost(w, r)
	if !ok {
		return
	}
	name := r.PostForm.Get("other")
	if name == "" {
		name = r.PostForm.Get("person")
	}
	if !validDevName(name) {
		c.showLogin(w, r, http.StatusBadRequest, "Pick a person, or type a name of 1 to 64 letters, digits, '.', '_', '-' or '@'.")
		return
	}
	var roles []identity.Role
	for _, v := range r.PostForm["role"] {
		if !slices.Contains(identity.AllRoles, identity.Role(v)) {
			c.showLogin(w, r, http.StatusBadRequest, "Unknown role "+v+".")
			return
		}
		if !slices.Contains(roles, identity.Role(v)) {
			roles = append(roles, identity.Role(v))
		}
	}
	if len(roles) == 0 {
		c.showLogin(w, r, http.StatusBadRequest, "Pick at least one role.")
		return
	}
	ttl := min(c.sessions.ttl, identity.DevMaxTTL)
	tok, err := identity.DevToken(c.cfg.DataDir, name, roles, ttl, c.now())
	if err != nil {
		c.log.ErrorContext(r.Context(), "console: minting a dev token", "err", err)
		c.showLogin(w, r, http.StatusInternalServerError, "The dev issuer could not mint a token; see the server log.")
		return
	}
	p, err := c.cfg.Auth.VerifyToken(r.Context(), tok)
	if err != nil {
		c.log.ErrorContext(r.Context(), "console: verifying a dev token", "err", err)
		c.showLogin(w, r, http.StatusInternalServerError, "The dev token was not accepted; see the server log.")
		return
	}
	c.startSession(w, r, oldID, p)
}

// validDevName accepts short names of a safe alphabet.
func validDevName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-', r == '@':
		default:
			return false
		}
	}
	return true
}

// startSession replaces the anonymous session oldID by a new signed-in one
// (a fresh ID, so a session fixed before sign-in is worthless after).
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, oldID string, p identity.Principal) {
	c.sessions.destroy(oldID)
	id, ss, ok := c.sessions.create(&p)
	if !ok {
		c.errorPage(w, r, nil, http.StatusServiceUnavailable, "Busy", "Too many sessions; try again shortly.")
		return
	}
	c.setCookie(w, id, ss.expires)
	c.log.InfoContext(r.Context(), "console: signed in", "principal", p.ID, "roles", p.Roles, "method", string(p.Method))
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

// signOut ends the session.
func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	id, _, ok := c.anonPost(w, r)
	if !ok {
		return
	}
	c.sessions.destroy(id)
	c.clearCookie(w)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// oidcStart sends the browser to the provider with a fresh state, nonce
// and PKCE verifier kept in the session.
func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	if c.oidc == nil {
		c.errorPage(w, r, nil, http.StatusNotFound, "Not found", "OIDC sign-in is not configured (console.oidc).")
		return
	}
	id, _, ok := c.anonPost(w, r)
	if !ok {
		return
	}
	authURL, err := c.oidc.authURL(r.Context(), func(state, nonce, verifier string) bool {
		return c.sessions.update(id, func(s *session) { s.oidcState, s.oidcNonce, s.oidcVerifier = state, nonce, verifier })
	})
	if err != nil {
		c.log.ErrorContext(r.Context(), "console: OIDC discovery", "issuer", c.oidc.cfg.Issuer, "err", err)
		c.showLogin(w, r, http.StatusBadGateway, "The identity provider could not be reached; see the server log.")
		return
	}
	http.Redirect(w, r, authURL, http.StatusSeeOther)
}

// oidcCallback finishes the code flow: the state must be the one this
// session sent, the code is exchanged with the PKCE verifier, and the ID
// token must verify and carry the session's nonce.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if c.oidc == nil {
		c.errorPage(w, r, nil, http.StatusNotFound, "Not found", "OIDC sign-in is not configured (console.oidc).")
		return
	}
	id, ss, ok := c.sessionOf(r)
	q := r.URL.Query()
	if !ok || ss.oidcState == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(ss.oidcState)) != 1 {
		c.showLogin(w, r, http.StatusBadRequest, "This sign-in answer does not belong to a sign-in started here; start again.")
		return
	}
	// The state is single use.
	c.sessions.update(id, func(s *session) { s.oidcState, s.oidcNonce, s.oidcVerifier = "", "", "" })
	if e := q.Get("error"); e != "" {
		c.showLogin(w, r, http.StatusUnauthorized, "The identity provider refused the sign-in: "+limit(e, 100)+" "+limit(q.Get("error_description"), 200))
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		c.showLogin(w, r, http.StatusBadRequest, "The identity provider's answer has no usable code.")
		return
	}
	p, err := c.oidc.finish(r.Context(), code, ss.oidcVerifier, ss.oidcNonce, c.now())
	if err != nil {
		c.log.WarnContext(r.Context(), "console: OIDC sign-in refused", "issuer", c.oidc.cfg.Issuer, "err", err)
		c.showLogin(w, r, http.StatusUnauthorized, "Sign-in failed: "+err.Error())
		return
	}
	c.startSession(w, r, id, p)
}

// limit cuts s to n bytes for display.
func limit(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
