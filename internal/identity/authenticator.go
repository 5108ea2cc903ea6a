package identity

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/ledger"
)

// Options are the parts of an Authenticator that do not come from the
// configuration file.
type Options struct {
	// Dev trusts the local dev issuer in DataDir, creating it if needed.
	Dev bool
	// DataDir is the data directory holding the dev issuer.
	DataDir string
	// Recorder receives auth.rejected events from RequireRole. Nil records
	// nothing (tests, tools).
	Recorder ledger.Recorder
	// Limits, when set, admits each verified principal RequireRole serves
	// and decides which of its refusals are recorded one by one.
	Limits Limits
	// Logger is the operational log; nil discards.
	Logger *slog.Logger
	// HTTPClient fetches OIDC discovery documents and JWKS; nil means a client
	// with a 15 s timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Authenticator verifies callers. It is safe for concurrent use.
type Authenticator struct {
	cfg     config.IdentityConfig
	spiffe  *trustSet
	issuers map[string]*oidcIssuer
	cache   *cache
	rec     ledger.Recorder
	limits  Limits
	log     *slog.Logger
	now     func() time.Time
	stop    context.CancelFunc
}

// New builds an Authenticator from cfg. It loads bundle files and JWKS files,
// fetches bundle endpoints once and connects to the Workload API, failing if
// any trust source cannot be read: a server that cannot check identities must
// not start. ctx bounds that start-up work; background refreshes run until
// Close.
func New(ctx context.Context, cfg config.IdentityConfig, opts Options) (*Authenticator, error) {
	if opts.Dev {
		if _, err := EnsureDevIssuer(opts.DataDir); err != nil {
			return nil, err
		}
		var err error
		if cfg, err = withDevTrust(cfg, opts.DataDir); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Authenticator{
		cfg:     cfg,
		issuers: map[string]*oidcIssuer{},
		cache:   newCache(cfg.CacheSize, cfg.CacheMaxAge),
		rec:     opts.Recorder,
		limits:  opts.Limits,
		log:     opts.Logger,
		now:     opts.Now,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	run, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.stop = stop
	ts, err := newTrustSet(ctx, run, cfg.SPIFFE, a.log)
	if err != nil {
		stop()
		return nil, fmt.Errorf("identity.spiffe: %w", err)
	}
	a.spiffe = ts
	for _, c := range cfg.OIDC {
		o, err := newOIDCIssuer(c, cfg.Audience, client)
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("identity.oidc: %w", err)
		}
		a.issuers[c.Issuer] = o
	}
	return a, nil
}

// Close stops background bundle refreshes and closes the Workload API
// connection.
func (a *Authenticator) Close() error {
	a.stop()
	return a.spiffe.close()
}

// Authenticate verifies the request's caller: the bearer token in the
// Authorization header if there is one, else the client's X.509-SVID from the
// TLS handshake. The error is a *refusal.Error (match with errors.Is against
// ErrNoCredentials, ErrInvalidRequest and ErrInvalidToken).
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request) (Principal, error) {
	authz := r.Header.Values("Authorization")
	switch {
	case len(authz) > 1:
		return Principal{}, refuse(ReasonBadRequest, "more than one Authorization header")
	case len(authz) == 1:
		scheme, tok, _ := strings.Cut(authz[0], " ")
		tok = strings.TrimLeft(tok, " ")
		if !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return Principal{}, refuse(ReasonBadRequest, "Authorization header must be 'Bearer <token>'")
		}
		return a.VerifyToken(ctx, tok)
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return a.verifyCerts(r.TLS.PeerCertificates)
	}
	return Principal{}, refuse(ReasonNoCredentials, "send 'Authorization: Bearer <token>' or a client X.509-SVID")
}

// VerifyToken verifies a bearer token (JWT-SVID or OIDC JWT) and returns its
// principal. The error is a *refusal.Error matching ErrInvalidToken.
func (a *Authenticator) VerifyToken(ctx context.Context, raw string) (Principal, error) {
	if len(raw) > a.cfg.MaxTokenBytes {
		// Refuse before hashing: the size limit bounds all work.
		return Principal{}, refuse(ReasonOversized, "token is %d bytes; the limit is %d", len(raw), a.cfg.MaxTokenBytes)
	}
	now := a.now()
	key := sha256.Sum256([]byte(raw))
	if p, ok := a.cache.get(key, now); ok {
		return p, nil
	}
	t, e := parseToken(raw, a.cfg.MaxTokenBytes)
	if e != nil {
		return Principal{}, e
	}
	var p Principal
	switch iss, isSPIFFE := a.issuers[t.claims.Issuer], strings.HasPrefix(t.claims.Subject, "spiffe://"); {
	case t.claims.Issuer != "" && iss != nil:
		p, e = iss.verify(ctx, t, now, a.cfg.ClockSkew)
	case isSPIFFE:
		p, e = a.verifyJWTSVID(t, now)
	case t.claims.Issuer == "":
		return Principal{}, t.refuse(ReasonUnknownIssuer, "token has no iss and its sub is not a SPIFFE ID")
	default:
		return Principal{}, t.refuse(ReasonUnknownIssuer, "issuer '%s' is not trusted", bearer.Claim(t.claims.Issuer))
	}
	if e != nil {
		return Principal{}, e
	}
	a.cache.put(key, p, now)
	return p, nil
}

// verifyCerts verifies a client certificate chain as an X.509-SVID. The TLS
// listener verified it already when built with TLSConfig; it is checked again
// here so a listener configured otherwise still fails closed.
func (a *Authenticator) verifyCerts(certs []*x509.Certificate) (Principal, error) {
	now := a.now()
	h := sha256.New()
	h.Write([]byte("x509-svid\x00"))
	for _, c := range certs {
		h.Write(c.Raw)
	}
	var key [32]byte
	h.Sum(key[:0])
	if p, ok := a.cache.get(key, now); ok {
		return p, nil
	}
	p, e := a.verifyX509SVID(certs, now)
	if e != nil {
		return Principal{}, e
	}
	a.cache.put(key, p, now)
	return p, nil
}

// TLSConfig returns a copy of base that asks clients for a certificate and,
// when one is sent, accepts it only as an X.509-SVID of a trusted trust
// domain. Clients without a certificate still connect (they authenticate with
// a bearer token). base supplies the server's own certificate.
func (a *Authenticator) TLSConfig(base *tls.Config) *tls.Config {
	c := base.Clone()
	if c == nil {
		c = &tls.Config{}
	}
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	c.ClientAuth = tls.RequestClientCert
	c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return nil
		}
		id, _, err := x509svid.ParseAndVerify(raw, a.spiffe, x509svid.WithTime(a.now()))
		if err != nil {
			return errors.New("client certificate is not a valid X.509-SVID of a trusted trust domain")
		}
		if !a.spiffe.trusted(id.TrustDomain()) {
			return fmt.Errorf("trust domain %q is not trusted", id.TrustDomain().Name())
		}
		return nil
	}
	return c
}
