package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/writhq/writ/internal/config"
)

// testNow is the fixed clock of most tests.
var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const testIssuer = "https://idp.example.com"

// world is a set of keys and trust files for one test.
type world struct {
	dir     string
	ec      *ecdsa.PrivateKey // trusted by the OIDC issuer (kid "oidc-1") and example.org (kid "spiffe-1")
	rsa     *rsa.PrivateKey   // trusted by the OIDC issuer, kid "oidc-rsa"
	other   *ecdsa.PrivateKey // trusted by nobody
	ca      *x509.Certificate // X.509 authority of example.org
	caKey   *ecdsa.PrivateKey
	cfg     config.IdentityConfig
	oidcPub []byte // PEM-ish bytes of the EC public key, for the HMAC confusion attack
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{dir: t.TempDir()}
	w.ec = mustEC(t)
	w.other = mustEC(t)
	w.caKey = mustEC(t)
	var err error
	if w.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	w.ca = selfSignedCA(t, w.caKey, "spiffe://example.org")

	jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &w.ec.PublicKey, KeyID: "oidc-1", Use: "sig"},
		{Key: &w.rsa.PublicKey, KeyID: "oidc-rsa", Use: "sig"},
	}}
	writeJSON(t, filepath.Join(w.dir, "idp.jwks"), jwks)

	b := spiffebundle.New(spiffeid.RequireTrustDomainFromString("example.org"))
	if err := b.AddJWTAuthority("spiffe-1", &w.ec.PublicKey); err != nil {
		t.Fatal(err)
	}
	b.AddX509Authority(w.ca)
	bb, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(w.dir, "example.org.bundle"), bb)

	der, _ := x509.MarshalPKIXPublicKey(&w.ec.PublicKey)
	w.oidcPub = der

	w.cfg = config.DefaultIdentity()
	w.cfg.SPIFFE.TrustDomains = []config.TrustDomainConfig{{Name: "example.org", BundleFile: filepath.Join(w.dir, "example.org.bundle")}}
	w.cfg.SPIFFE.Roles = map[string][]string{"requester": {"spiffe://example.org/orchestrator/*"}}
	w.cfg.OIDC = []config.OIDCIssuerConfig{{
		Issuer: testIssuer, JWKSFile: filepath.Join(w.dir, "idp.jwks"), RolesClaim: "realm.groups",
		Roles: map[string][]string{"approver": {"sec"}, "requester": {"eng", "sec"}, "admin": {"root"}},
	}}
	return w
}

func (w *world) auth(t testing.TB, opts Options) *Authenticator {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	a, err := New(t.Context(), w.cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func mustEC(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b)
}

// sign makes a JWS compact JWT with alg, key and kid over claims.
func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid, typ string, claims any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	var k any = key
	if kid != "" {
		k = jose.JSONWebKey{Key: key, KeyID: kid}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unsigned builds header.payload. with an arbitrary header (alg "none").
func unsigned(t testing.TB, hdr, claims any) string {
	t.Helper()
	h, _ := json.Marshal(hdr)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

func oidcClaims(mod func(m map[string]any)) map[string]any {
	m := map[string]any{
		"iss": testIssuer, "sub": "alice", "aud": []string{"writ"},
		"exp": testNow.Add(time.Hour).Unix(), "iat": testNow.Add(-time.Minute).Unix(),
		"jti": "j-1", "realm": map[string]any{"groups": []any{"sec", "other"}},
	}
	if mod != nil {
		mod(m)
	}
	return m
}

func svidClaims(sub string, mod func(m map[string]any)) map[string]any {
	m := map[string]any{
		"sub": sub, "aud": []string{"writ"},
		"exp": testNow.Add(5 * time.Minute).Unix(), "iat": testNow.Unix(),
	}
	if mod != nil {
		mod(m)
	}
	return m
}

func selfSignedCA(t testing.TB, key *ecdsa.PrivateKey, td string) *x509.Certificate {
	t.Helper()
	return selfSignedCAAt(t, key, td, testNow)
}

func selfSignedCAAt(t testing.TB, key *ecdsa.PrivateKey, td string, now time.Time) *x509.Certificate {
	t.Helper()
	u, _ := url.Parse(td)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, URIs: []*url.URL{u},
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// leafSVIDAt issues an X.509-SVID for id signed by ca, valid around now.
func leafSVIDAt(t testing.TB, ca *x509.Certificate, caKey crypto.Signer, id string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	notAfter := now.Add(time.Hour)
	key := mustEC(t)
	u, _ := url.Parse(id)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), NotBefore: now.Add(-time.Hour), NotAfter: notAfter,
		URIs: []*url.URL{u}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func spiffeBundleWith(t testing.TB, td string, ca *x509.Certificate) *spiffebundle.Bundle {
	t.Helper()
	b := spiffebundle.New(spiffeid.RequireTrustDomainFromString(td))
	b.AddX509Authority(ca)
	return b
}
