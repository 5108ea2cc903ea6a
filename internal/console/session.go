package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/writhq/writ/internal/identity"
)

// Session limits. A session is kept in server memory only: the cookie holds
// a random ID, nothing else, and the server forgets the session when it
// expires, when it has been idle too long, or at sign-out.
const (
	// anonTTL bounds a session that has not signed in (it carries the CSRF
	// token of the sign-in form and the OIDC state).
	anonTTL = 15 * time.Minute
	// maxSessions bounds the sessions held; anonymous ones are refused
	// beyond it, so unauthenticated visitors cannot exhaust memory.
	maxSessions = 50000
	// maxAnonSessions bounds sessions that have not signed in.
	maxAnonSessions = 10000
	// idBytes is the entropy of session IDs and CSRF tokens.
	idBytes = 32
)

// session is one browser's state.
type session struct {
	csrf      string
	principal *identity.Principal // nil until signed in
	created   time.Time
	expires   time.Time // absolute end
	lastSeen  time.Time
	// Sign-in in progress with the OIDC provider.
	oidcState, oidcNonce, oidcVerifier string
	// flash is a one-time message shown on the next page.
	flash      string
	flashError bool
}

// sessions is the server-side session store, keyed by the SHA-256 of the
// cookie value so that lookups do not compare secrets.
type sessions struct {
	mu    sync.Mutex
	m     map[[32]byte]*session
	anon  int
	ttl   time.Duration
	idle  time.Duration
	now   func() time.Time
	sweep time.Time
}

func newSessions(ttl, idle time.Duration, now func() time.Time) *sessions {
	return &sessions{m: map[[32]byte]*session{}, ttl: ttl, idle: idle, now: now}
}

// randomToken returns idBytes of randomness, base64url encoded.
func randomToken() string {
	b := make([]byte, idBytes)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sessionKey(id string) [32]byte { return sha256.Sum256([]byte(id)) }

// get returns a copy of the live session for the cookie value id, touching
// its idle timer.
func (s *sessions) get(id string) (session, bool) {
	if len(id) != base64.RawURLEncoding.EncodedLen(idBytes) {
		return session{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	k := sessionKey(id)
	ss := s.m[k]
	if ss == nil {
		return session{}, false
	}
	if s.expired(ss, now) {
		s.drop(k)
		return session{}, false
	}
	ss.lastSeen = now
	return *ss, true
}

func (s *sessions) expired(ss *session, now time.Time) bool {
	if !now.Before(ss.expires) {
		return true
	}
	return ss.principal != nil && now.Sub(ss.lastSeen) >= s.idle
}

func (s *sessions) drop(k [32]byte) {
	if ss := s.m[k]; ss != nil {
		if ss.principal == nil {
			s.anon--
		}
		delete(s.m, k)
	}
}

// create starts a session, anonymous when p is nil, and returns its cookie
// value. It fails when the store is full.
func (s *sessions) create(p *identity.Principal) (string, *session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweepLocked(now)
	if len(s.m) >= maxSessions || (p == nil && s.anon >= maxAnonSessions) {
		return "", nil, false
	}
	ttl := s.ttl
	if p == nil {
		ttl = anonTTL
		s.anon++
	}
	id := randomToken()
	ss := &session{csrf: randomToken(), principal: p, created: now, expires: now.Add(ttl), lastSeen: now}
	s.m[sessionKey(id)] = ss
	c := *ss
	return id, &c, true
}

// update applies fn to the live session id; it reports false when the
// session is gone.
func (s *sessions) update(id string, fn func(*session)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[sessionKey(id)]
	if ss == nil || s.expired(ss, s.now()) {
		return false
	}
	fn(ss)
	return true
}

// destroy forgets session id.
func (s *sessions) destroy(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop(sessionKey(id))
}

// sweepLocked drops expired sessions, at most once a minute.
func (s *sessions) sweepLocked(now time.Time) {
	if now.Sub(s.sweep) < time.Minute {
		return
	}
	s.sweep = now
	for k, ss := range s.m {
		if s.expired(ss, now) {
			s.drop(k)
		}
	}
}

// csrfOK reports whether the form's token is the session's, in constant time.
func csrfOK(ss session, token string) bool {
	return ss.csrf != "" && len(token) == len(ss.csrf) &&
		subtle.ConstantTimeCompare([]byte(token), []byte(ss.csrf)) == 1
}

// cookieName is the session cookie's name: with the __Host- prefix when
// Secure, so that browsers bind it to this host and path /.
func (c *Console) cookieName() string {
	if c.secure {
		return "__Host-writ_session"
	}
	return "writ_session"
}

// setCookie sends the session cookie: HttpOnly, SameSite=Lax (so the OIDC
// provider's redirect back carries it), Secure under TLS. It lives no
// longer than the session.
func (c *Console) setCookie(w http.ResponseWriter, id string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: c.cookieName(), Value: id, Path: "/", Expires: expires,
		MaxAge: int(expires.Sub(c.now()).Seconds()), HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode,
	})
}

func (c *Console) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode})
}

// sessionOf returns the request's session and its cookie value.
func (c *Console) sessionOf(r *http.Request) (string, session, bool) {
	ck, err := r.Cookie(c.cookieName())
	if err != nil {
		return "", session{}, false
	}
	ss, ok := c.sessions.get(ck.Value)
	return ck.Value, ss, ok
}

func subtleCompare(a, b string) int { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) }
