package identity

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/federation"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/refusal"
)

// maxBundleBytes bounds a bundle or JWKS file.
const maxBundleBytes = 1 << 20

// defaultBundleRefresh is how often a bundle endpoint is polled when its
// bundle carries no refresh hint.
const defaultBundleRefresh = 5 * time.Minute

// trustSet holds the bundles of the configured SPIFFE trust domains and only
// those: a bundle the Workload API knows for another trust domain is not
// trusted. It implements jwtbundle.Source and x509bundle.Source.
type trustSet struct {
	mu      sync.RWMutex
	bundles map[spiffeid.TrustDomain]*spiffebundle.Bundle // from files and endpoints
	fromWL  map[spiffeid.TrustDomain]bool
	wl      *workloadapi.BundleSource
	roles   spiffeRoles
}

var (
	_ jwtbundle.Source  = (*trustSet)(nil)
	_ x509bundle.Source = (*trustSet)(nil)
)

// newTrustSet loads every configured trust domain's bundle. Bundle endpoints
// are then polled until run is cancelled; the Workload API source is closed by
// close.
func newTrustSet(ctx, run context.Context, cfg config.SPIFFEConfig, log *slog.Logger) (*trustSet, error) {
	s := &trustSet{
		bundles: map[spiffeid.TrustDomain]*spiffebundle.Bundle{},
		fromWL:  map[spiffeid.TrustDomain]bool{},
		roles:   newSPIFFERoles(cfg.Roles),
	}
	for _, tc := range cfg.TrustDomains {
		td, err := spiffeid.TrustDomainFromString(tc.Name)
		if err != nil {
			return nil, fmt.Errorf("trust domain %q: %w", tc.Name, err)
		}
		switch {
		case tc.BundleFile != "":
			b, err := loadBundleFile(td, tc.BundleFile)
			if err != nil {
				return nil, fmt.Errorf("trust domain %s: %w", td, err)
			}
			s.bundles[td] = b
		case tc.BundleEndpoint != "":
			if err := s.watchEndpoint(ctx, run, td, tc, log); err != nil {
				return nil, fmt.Errorf("trust domain %s: bundle endpoint %s: %w", td, tc.BundleEndpoint, err)
			}
		case tc.WorkloadAPI:
			s.fromWL[td] = true
		}
	}
	if len(s.fromWL) > 0 {
		src, err := workloadapi.NewBundleSource(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(cfg.WorkloadAPISocket)))
		if err != nil {
			return nil, fmt.Errorf("SPIFFE Workload API %s: %w", cfg.WorkloadAPISocket, err)
		}
		s.wl = src
	}
	return s, nil
}

func (s *trustSet) close() error {
	if s == nil || s.wl == nil {
		return nil
	}
	return s.wl.Close()
}

// loadBundleFile reads a SPIFFE bundle, or a plain JWKS whose keys are all
// JWT authorities. A file without any key is an error.
func loadBundleFile(td spiffeid.TrustDomain, path string) (*spiffebundle.Bundle, error) {
	b, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	return parseBundle(td, b)
}

func parseBundle(td spiffeid.TrustDomain, b []byte) (*spiffebundle.Bundle, error) {
	bundle, err := spiffebundle.Parse(td, b)
	if err == nil && !bundle.Empty() && (len(bundle.JWTAuthorities()) > 0 || len(bundle.X509Authorities()) > 0) {
		return bundle, nil
	}
	// A plain JWKS has no "use": x509-svid/jwt-svid members; read it as JWT authorities.
	jb, jerr := jwtbundle.Parse(td, b)
	if jerr != nil {
		if err != nil {
			return nil, err
		}
		return nil, jerr
	}
	if jb.Empty() {
		return nil, errors.New("bundle has no keys")
	}
	return spiffebundle.FromJWTBundle(jb), nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxBundleBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBundleBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxBundleBytes)
	}
	return b, nil
}

// watchEndpoint fetches the bundle once (failing if it cannot) and then polls
// the endpoint in the background. A failed poll keeps the last good bundle.
func (s *trustSet) watchEndpoint(ctx, run context.Context, td spiffeid.TrustDomain, tc config.TrustDomainConfig, log *slog.Logger) error {
	var opts []federation.FetchOption
	if tc.BundleEndpointCAFile != "" {
		pem, err := readLimited(tc.BundleEndpointCAFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s holds no PEM certificates", tc.BundleEndpointCAFile)
		}
		opts = append(opts, federation.WithWebPKIRoots(pool))
	}
	fetch := func(ctx context.Context) (*spiffebundle.Bundle, error) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return federation.FetchBundle(ctx, td, tc.BundleEndpoint, opts...)
	}
	b, err := fetch(ctx)
	if err != nil {
		return err
	}
	s.setBundle(td, b)
	refresh := tc.BundleRefresh
	if refresh == 0 {
		refresh = defaultBundleRefresh
	}
	go func() {
		for {
			next := refresh
			if hint, ok := b.RefreshHint(); ok && hint > 0 {
				next = max(hint, 10*time.Second)
			}
			select {
			case <-run.Done():
				return
			case <-time.After(next):
			}
			nb, err := fetch(run)
			if err != nil {
				log.WarnContext(run, "bundle endpoint poll failed; keeping last bundle", "trust_domain", td.Name(), "error", err)
				continue
			}
			b = nb
			s.setBundle(td, b)
		}
	}()
	return nil
}

func (s *trustSet) setBundle(td spiffeid.TrustDomain, b *spiffebundle.Bundle) {
	s.mu.Lock()
	s.bundles[td] = b
	s.mu.Unlock()
}

// trusted reports whether td is a configured trust domain.
func (s *trustSet) trusted(td spiffeid.TrustDomain) bool {
	if s == nil {
		return false
	}
	s.mu.RLock()
	_, ok := s.bundles[td]
	s.mu.RUnlock()
	return ok || s.fromWL[td]
}

// GetBundleForTrustDomain returns the bundle of a configured trust domain.
func (s *trustSet) GetBundleForTrustDomain(td spiffeid.TrustDomain) (*spiffebundle.Bundle, error) {
	if s.fromWL[td] {
		return s.wl.GetBundleForTrustDomain(td)
	}
	s.mu.RLock()
	b, ok := s.bundles[td]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("trust domain %q is not trusted", td.Name())
	}
	return b, nil
}

// GetJWTBundleForTrustDomain implements jwtbundle.Source.
func (s *trustSet) GetJWTBundleForTrustDomain(td spiffeid.TrustDomain) (*jwtbundle.Bundle, error) {
	b, err := s.GetBundleForTrustDomain(td)
	if err != nil {
		return nil, err
	}
	return b.JWTBundle(), nil
}

// GetX509BundleForTrustDomain implements x509bundle.Source.
func (s *trustSet) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	b, err := s.GetBundleForTrustDomain(td)
	if err != nil {
		return nil, err
	}
	return b.X509Bundle(), nil
}

// jwtKey finds the JWT authority kid of td.
func (s *trustSet) jwtKey(td spiffeid.TrustDomain, kid string) (crypto.PublicKey, bool) {
	b, err := s.GetBundleForTrustDomain(td)
	if err != nil {
		return nil, false
	}
	return b.FindJWTAuthority(kid)
}

// spiffeTypOK accepts the typ values the JWT-SVID spec allows.
func spiffeTypOK(typ string) bool { return typ == "" || typ == "JWT" || typ == "JOSE" }

// verifyJWTSVID verifies t as a JWT-SVID against the trust set.
func (a *Authenticator) verifyJWTSVID(t *token, now time.Time) (Principal, *refusal.Error) {
	id, err := spiffeid.FromString(t.claims.Subject)
	if err != nil {
		return Principal{}, t.refuse(ReasonMalformed, "sub '%s' is not a valid SPIFFE ID", bearer.Claim(t.claims.Subject))
	}
	if !a.spiffe.trusted(id.TrustDomain()) {
		return Principal{}, t.refuse(ReasonWrongTrustDomain, "trust domain '%s' is not trusted", bearer.Claim(id.TrustDomain().Name()))
	}
	if !spiffeTypOK(t.header.Typ) {
		return Principal{}, t.refuse(ReasonMalformed, "JWT-SVID typ '%s': want JWT or JOSE", bearer.Claim(t.header.Typ))
	}
	if t.header.Kid == "" {
		return Principal{}, t.refuse(ReasonUnknownKey, "JWT-SVID header has no kid")
	}
	key, ok := a.spiffe.jwtKey(id.TrustDomain(), t.header.Kid)
	if !ok {
		return Principal{}, t.refuse(ReasonUnknownKey, "key '%s' is not in the bundle of %s", bearer.Claim(t.header.Kid), id.TrustDomain().Name())
	}
	if e := t.verify(key); e != nil {
		return Principal{}, e
	}
	if e := t.checkTimes(now, a.cfg.ClockSkew); e != nil {
		return Principal{}, e
	}
	if e := t.checkAudience(a.cfg.Audience); e != nil {
		return Principal{}, e
	}
	p := a.svidPrincipal(id, MethodJWTSVID, t.claims.Expiry.Time().UTC(), t.fingerprint)
	p.JTI = t.claims.ID
	return p, nil
}

// verifyX509SVID verifies a client certificate chain as an X.509-SVID.
func (a *Authenticator) verifyX509SVID(certs []*x509.Certificate, now time.Time) (Principal, *refusal.Error) {
	fp := fingerprint(certs[0].Raw)
	fail := func(r Reason, format string, args ...any) (Principal, *refusal.Error) {
		e := refuse(r, format, args...)
		e.Fingerprint = fp
		return Principal{}, e
	}
	id, err := x509svid.IDFromCert(certs[0])
	if err != nil {
		return fail(ReasonInvalidSVID, "client certificate is not an X.509-SVID")
	}
	if !a.spiffe.trusted(id.TrustDomain()) {
		return fail(ReasonWrongTrustDomain, "trust domain '%s' is not trusted", bearer.Claim(id.TrustDomain().Name()))
	}
	if _, _, err := x509svid.Verify(certs, a.spiffe, x509svid.WithTime(now)); err != nil {
		return fail(ReasonInvalidSVID, "X.509-SVID %s does not verify: %s", id, bearer.Claim(err.Error()))
	}
	return a.svidPrincipal(id, MethodX509SVID, certs[0].NotAfter.UTC(), fp), nil
}

// svidPrincipal is the agent a verified SVID names, its roles those the
// configuration gives its SPIFFE ID.
func (a *Authenticator) svidPrincipal(id spiffeid.ID, method Method, expiry time.Time, fp string) Principal {
	return Principal{
		Kind:        KindAgent,
		ID:          id.String(),
		Subject:     id.String(),
		Issuer:      id.TrustDomain().IDString(),
		Roles:       a.spiffe.roles.match(id.String()),
		Method:      method,
		Expiry:      expiry,
		Fingerprint: fp,
	}
}

// spiffeRoles maps SPIFFE IDs to roles.
type spiffeRoles map[Role][]string

func newSPIFFERoles(m map[string][]string) spiffeRoles {
	r := spiffeRoles{}
	for role, ids := range m {
		r[Role(role)] = ids
	}
	return r
}

// match returns the roles whose patterns match id, in AllRoles order. A
// pattern ending in "/*" matches IDs strictly under that path.
func (r spiffeRoles) match(id string) []Role {
	var out []Role
	for _, role := range AllRoles {
		for _, p := range r[role] {
			if p == id || (strings.HasSuffix(p, "/*") && strings.HasPrefix(id, p[:len(p)-1])) {
				out = append(out, role)
				break
			}
		}
	}
	return out
}
