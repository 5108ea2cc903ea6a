package console_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/writhq/writ/internal/config"
)

// provider is a small but real OIDC provider: discovery, an authorization
// endpoint that signs in a fixed user, a token endpoint that enforces PKCE
// (S256) and single-use codes, and RS256-signed ID tokens.
type provider struct {
	t        testing.TB
	srv      *httptest.Server
	key      *rsa.PrivateKey
	clientID string
	redirect string

	mu         sync.Mutex
	user       string
	groups     []string
	wrongNonce bool
	codes      map[string]grant
	sawPKCE    bool
}

type grant struct {
	challenge, nonce, redirect, sub string
	groups                          []string
}

func newProvider(t testing.TB, clientID string) *provider {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{t: t, key: key, clientID: clientID, codes: map[string]grant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) issuer() string { return p.srv.URL }

func (p *provider) signIn(user string, groups ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.user, p.groups = user, groups
}

func (p *provider) discovery(w http.ResponseWriter, r *http.Request) {
	json.NewEncoder(w).Encode(map[string]any{
		"issuer": p.issuer(), "authorization_endpoint": p.issuer() + "/authorize", "token_endpoint": p.issuer() + "/token",
		"jwks_uri": p.issuer() + "/jwks", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"}, "code_challenge_methods_supported": []string{"S256"},
	})
}

func (p *provider) jwks(w http.ResponseWriter, r *http.Request) {
	json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
}

func (p *provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Get("response_type") != "code", q.Get("client_id") != p.clientID, q.Get("redirect_uri") != p.redirect:
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	case q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43:
		http.Error(w, "PKCE with S256 is required", http.StatusBadRequest)
		return
	case q.Get("state") == "" || q.Get("nonce") == "" || !strings.Contains(q.Get("scope"), "openid"):
		http.Error(w, "state, nonce and the openid scope are required", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	code := base64.RawURLEncoding.EncodeToString(randBytes(24))
	p.codes[code] = grant{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirect: q.Get("redirect_uri"), sub: p.user, groups: p.groups}
	p.mu.Unlock()
	to, _ := url.Parse(q.Get("redirect_uri"))
	v := url.Values{"code": {code}, "state": {q.Get("state")}}
	to.RawQuery = v.Encode()
	http.Redirect(w, r, to.String(), http.StatusFound)
}

func (p *provider) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	p.mu.Lock()
	g, ok := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code"))
	wrongNonce := p.wrongNonce
	p.mu.Unlock()
	fail := func(code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	clientID := r.PostForm.Get("client_id")
	if id, _, ok := r.BasicAuth(); ok {
		clientID = id
	}
	switch {
	case r.PostForm.Get("grant_type") != "authorization_code":
		fail("unsupported_grant_type", "")
		return
	case !ok:
		fail("invalid_grant", "unknown or used code")
		return
	case clientID != p.clientID || r.PostForm.Get("redirect_uri") != g.redirect:
		fail("invalid_grant", "client or redirect mismatch")
		return
	}
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		fail("invalid_grant", "PKCE verification failed")
		return
	}
	p.mu.Lock()
	p.sawPKCE = true
	p.mu.Unlock()
	nonce := g.nonce
	if wrongNonce {
		nonce = "not-the-nonce"
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: p.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		p.t.Error(err)
		return
	}
	now := time.Now()
	idt, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: p.issuer(), Subject: g.sub, Audience: jwt.Audience{p.clientID},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute))}).
		Claims(map[string]any{"nonce": nonce, "groups": g.groups}).Serialize()
	if err != nil {
		p.t.Error(err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + g.sub, "token_type": "Bearer", "expires_in": 300, "id_token": idt})
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// freeAddr picks a loopback port for a server whose callback URL must be
// known before it starts.
func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// oidcServer starts a writ server (not in dev mode) whose console signs in
// with p.
func oidcServer(t testing.TB, p *provider) *testServer {
	addr := freeAddr(t)
	p.redirect = "http://" + addr + "/ui/login/callback"
	// A server outside dev mode starts only with a source of agents and
	// of requesters: two issuers of API tokens, apart from the console's.
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	if err := os.WriteFile(jwks, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return startServer(t, func(c *config.Config) {
		c.Dev = false
		c.Listen = addr
		c.Identity.OIDC = []config.OIDCIssuerConfig{
			{Issuer: "https://agents.example", JWKSFile: jwks, Kind: "agent"},
			{Issuer: "https://humans.example", JWKSFile: jwks, Roles: map[string][]string{"requester": {"eng"}}},
		}
		c.Console.OIDC = config.ConsoleOIDCConfig{Issuer: p.issuer(), ClientID: "writ-console", RedirectURL: p.redirect,
			Roles: map[string][]string{"approver": {"writ-approvers"}, "auditor": {"audit"}}}
	})
}

// startOIDC posts the sign-in form and returns the provider's
// authorization URL the console redirects to.
func startOIDC(t testing.TB, b *browserless) string {
	t.Helper()
	p := b.get("/ui/login")
	if !strings.Contains(p.body, `id="oidc-signin"`) || strings.Contains(p.body, `id="dev-signin"`) {
		t.Fatalf("sign-in page without OIDC, or with dev sign-in outside dev mode:\n%s", p.body)
	}
	p = b.post("/ui/login/oidc", nil, true)
	if p.status != http.StatusSeeOther {
		t.Fatalf("POST /ui/login/oidc: %d\n%s", p.status, p.body)
	}
	return p.header.Get("Location")
}

// atProvider follows the authorization URL at the provider and returns the
// callback URL it redirects to.
func atProvider(t testing.TB, authURL string) *url.URL {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("provider answered %d to %s", resp.StatusCode, authURL)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestOIDCSignIn(t *testing.T) {
	p := newProvider(t, "writ-console")
	ts := oidcServer(t, p)
	p.signIn("carol", "writ-approvers", "staff")

	b := newBrowserless(t, ts.url)
	cb := atProvider(t, startOIDC(t, b))
	pg := b.get(cb.RequestURI())
	if pg.status != http.StatusSeeOther || pg.header.Get("Location") != "/ui/" {
		t.Fatalf("callback: %d %s\n%s", pg.status, pg.header.Get("Location"), pg.body)
	}
	pg = b.get("/ui/inbox")
	if pg.status != http.StatusOK || !strings.Contains(pg.body, "oidc:"+p.issuer()+"#carol") {
		t.Fatalf("inbox after OIDC sign-in: %d\n%s", pg.status, pg.body)
	}
	if !p.sawPKCE {
		t.Error("the token endpoint never checked a PKCE verifier")
	}
	// Auditor pages need a role carol does not hold.
	if pg := b.get("/ui/ledger"); pg.status != http.StatusForbidden {
		t.Errorf("ledger page for an approver: %d, want 403", pg.status)
	}
	// The same answer again: the state was single use.
	if pg := b.get(cb.RequestURI()); pg.status != http.StatusBadRequest {
		t.Errorf("replayed callback: %d, want 400", pg.status)
	}
	// Dev sign-in does not exist outside dev mode.
	if pg := b.post("/ui/login/dev", url.Values{"person": {"erin"}, "role": {"admin"}}, true); pg.status != http.StatusNotFound {
		t.Errorf("dev sign-in outside dev mode: %d, want 404", pg.status)
	}
}

func TestOIDCRefusals(t *testing.T) {
	p := newProvider(t, "writ-console")
	ts := oidcServer(t, p)

	t.Run("state of another session", func(t *testing.T) {
		p.signIn("carol", "writ-approvers")
		victim := newBrowserless(t, ts.url)
		cb := atProvider(t, startOIDC(t, victim))
		// An attacker's browser presents the victim's answer.
		attacker := newBrowserless(t, ts.url)
		attacker.get("/ui/login")
		if pg := attacker.get(cb.RequestURI()); pg.status != http.StatusBadRequest {
			t.Errorf("callback in another session: %d, want 400", pg.status)
		}
		if pg := attacker.get("/ui/inbox"); pg.status != http.StatusSeeOther {
			t.Errorf("attacker signed in: %d", pg.status)
		}
	})
	t.Run("forged state", func(t *testing.T) {
		p.signIn("carol", "writ-approvers")
		b := newBrowserless(t, ts.url)
		cb := atProvider(t, startOIDC(t, b))
		q := cb.Query()
		q.Set("state", base64.RawURLEncoding.EncodeToString(randBytes(32)))
		cb.RawQuery = q.Encode()
		if pg := b.get(cb.RequestURI()); pg.status != http.StatusBadRequest {
			t.Errorf("forged state: %d, want 400", pg.status)
		}
	})
	t.Run("no writ role", func(t *testing.T) {
		p.signIn("mallory", "staff")
		b := newBrowserless(t, ts.url)
		cb := atProvider(t, startOIDC(t, b))
		pg := b.get(cb.RequestURI())
		if pg.status != http.StatusUnauthorized || !strings.Contains(pg.body, "holds no writ role") {
			t.Errorf("user without roles: %d\n%s", pg.status, pg.body)
		}
	})
	t.Run("wrong nonce", func(t *testing.T) {
		p.signIn("carol", "writ-approvers")
		p.mu.Lock()
		p.wrongNonce = true
		p.mu.Unlock()
		defer func() { p.mu.Lock(); p.wrongNonce = false; p.mu.Unlock() }()
		b := newBrowserless(t, ts.url)
		cb := atProvider(t, startOIDC(t, b))
		if pg := b.get(cb.RequestURI()); pg.status != http.StatusUnauthorized || !strings.Contains(pg.body, "nonce") {
			t.Errorf("ID token with another nonce: %d\n%s", pg.status, pg.body)
		}
	})
	t.Run("provider refuses", func(t *testing.T) {
		p.signIn("carol", "writ-approvers")
		b := newBrowserless(t, ts.url)
		cb := atProvider(t, startOIDC(t, b))
		q := cb.Query()
		q.Del("code")
		q.Set("error", "access_denied")
		cb.RawQuery = q.Encode()
		if pg := b.get(cb.RequestURI()); pg.status != http.StatusUnauthorized || !strings.Contains(pg.body, "access_denied") {
			t.Errorf("provider error: %d", pg.status)
		}
	})
}
