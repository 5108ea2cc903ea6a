package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/writhq/writ/internal/config"
)

// DevWarning is what the server logs, at warning level, when it starts with the
// dev issuer trusted.
const DevWarning = "DEV MODE: writ trusts the local dev issuer; anyone who can read the data directory can mint tokens for any human or agent. Never use --dev in production."

// Dev issuer names and limits.
const (
	// DevIssuer is the iss of dev human tokens.
	DevIssuer = "writ-dev"
	// DevTrustDomain is the SPIFFE trust domain of dev agent SVIDs.
	DevTrustDomain = "writ.dev"
	// DevMaxTTL bounds the lifetime of any dev token.
	DevMaxTTL = 24 * time.Hour
	// devRolesClaim carries a dev human's roles.
	devRolesClaim = "writ_roles"
)

// DevPaths are the dev issuer's files in a data directory.
func DevPaths(dataDir string) (key, jwks string) {
	dir := filepath.Join(dataDir, "dev")
	return filepath.Join(dir, "issuer-key.pem"), filepath.Join(dir, "jwks.json")
}

// EnsureDevIssuer creates the dev signing key (mode 0600) and its JWKS in
// dataDir unless they exist, and rewrites the JWKS if it does not match the
// key. It reports whether a new key was made. It refuses a key file that other
// users can read.
func EnsureDevIssuer(dataDir string) (created bool, err error) {
	if dataDir == "" {
		return false, errors.New("dev issuer: empty data directory")
	}
	keyPath, jwksPath := DevPaths(dataDir)
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
		return false, fmt.Errorf("dev issuer: %w", err)
	}
	key, err := loadDevKey(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return false, fmt.Errorf("dev issuer: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return false, fmt.Errorf("dev issuer: %w", err)
		}
		f, err := os.OpenFile(keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return false, fmt.Errorf("dev issuer: %w", err)
		}
		err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(keyPath)
			return false, fmt.Errorf("dev issuer: writing key: %w", err)
		}
		created = true
	} else if err != nil {
		return false, err
	}
	want, err := devJWKS(&key.PublicKey)
	if err != nil {
		return created, err
	}
	if have, err := os.ReadFile(jwksPath); err == nil && string(have) == string(want) {
		return created, nil
	}
	tmp := jwksPath + ".tmp"
	if err := os.WriteFile(tmp, want, 0o644); err != nil {
		return created, fmt.Errorf("dev issuer: %w", err)
	}
	if err := os.Rename(tmp, jwksPath); err != nil {
		return created, fmt.Errorf("dev issuer: %w", err)
	}
	return created, nil
}

func loadDevKey(path string) (*ecdsa.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("dev issuer key %s is readable by other users (mode %04o); run chmod 600 on it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("dev issuer key %s is not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("dev issuer key %s: %w", path, err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("dev issuer key %s is not a P-256 key", path)
	}
	return ec, nil
}

// devKeyID is the RFC 7638 thumbprint of the public key.
func devKeyID(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// devJWKS is the SPIFFE bundle (a JWKS) of the dev key, usable both as the
// dev OIDC issuer's JWKS and as the dev trust domain's bundle.
func devJWKS(pub *ecdsa.PublicKey) ([]byte, error) {
	kid, err := devKeyID(pub)
	if err != nil {
		return nil, err
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: kid, Algorithm: string(jose.ES256), Use: "jwt-svid"}}}
	b, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// DevTrust returns the issuer and trust domain that dev mode adds to the
// configuration: the dev OIDC issuer (humans, roles from the writ_roles claim)
// and the writ.dev trust domain, both trusting the JWKS in dataDir.
func DevTrust(dataDir string) (config.OIDCIssuerConfig, config.TrustDomainConfig) {
	_, jwks := DevPaths(dataDir)
	roles := map[string][]string{}
	for _, r := range AllRoles {
		roles[string(r)] = []string{string(r)}
	}
	return config.OIDCIssuerConfig{Issuer: DevIssuer, JWKSFile: jwks, Kind: string(KindHuman), RolesClaim: devRolesClaim, Roles: roles},
		config.TrustDomainConfig{Name: DevTrustDomain, BundleFile: jwks}
}

func withDevTrust(cfg config.IdentityConfig, dataDir string) (config.IdentityConfig, error) {
	iss, td := DevTrust(dataDir)
	for _, o := range cfg.OIDC {
		if o.Issuer == DevIssuer {
			return cfg, fmt.Errorf("dev mode: identity.oidc already names issuer %q", DevIssuer)
		}
	}
	for _, t := range cfg.SPIFFE.TrustDomains {
		if t.Name == DevTrustDomain {
			return cfg, fmt.Errorf("dev mode: identity.spiffe already names trust domain %q", DevTrustDomain)
		}
	}
	cfg.OIDC = append(slices.Clone(cfg.OIDC), iss)
	cfg.SPIFFE.TrustDomains = append(slices.Clone(cfg.SPIFFE.TrustDomains), td)
	return cfg, nil
}

// devSigner loads the dev key from dataDir.
func devSigner(dataDir string) (jose.Signer, error) {
	keyPath, _ := DevPaths(dataDir)
	key, err := loadDevKey(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no dev issuer in %s: %w", dataDir, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	kid, err := devKeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	return jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
}

func checkTTL(ttl time.Duration) error {
	if ttl <= 0 || ttl > DevMaxTTL {
		return fmt.Errorf("ttl %s: want more than 0 and at most %s", ttl, DevMaxTTL)
	}
	return nil
}

func randomJTI() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DevToken mints a dev OIDC token for human with roles, valid for ttl, for the
// audience "writ" (the default identity.audience).
func DevToken(dataDir, human string, roles []Role, ttl time.Duration, now time.Time) (string, error) {
	if human == "" {
		return "", errors.New("empty human name")
	}
	if err := checkTTL(ttl); err != nil {
		return "", err
	}
	for _, r := range roles {
		if !slices.Contains(AllRoles, r) {
			return "", fmt.Errorf("unknown role %q (want requester, approver, auditor or admin)", r)
		}
	}
	s, err := devSigner(dataDir)
	if err != nil {
		return "", err
	}
	std := jwt.Claims{
		Issuer: DevIssuer, Subject: human, Audience: jwt.Audience{"writ"},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(ttl)), ID: randomJTI(),
	}
	extra := map[string]any{devRolesClaim: roles}
	return jwt.Signed(s).Claims(std).Claims(extra).Serialize()
}

// DevSVID mints a JWT-SVID for a SPIFFE ID in the writ.dev trust domain.
func DevSVID(dataDir, id string, audience []string, ttl time.Duration, now time.Time) (string, error) {
	sid, err := spiffeid.FromString(id)
	if err != nil {
		return "", fmt.Errorf("agent %q: %w", id, err)
	}
	if sid.TrustDomain().Name() != DevTrustDomain {
		return "", fmt.Errorf("agent %s: the dev issuer signs only for trust domain %s", id, DevTrustDomain)
	}
	if len(audience) == 0 || slices.Contains(audience, "") {
		return "", errors.New("audience must not be empty")
	}
	if err := checkTTL(ttl); err != nil {
		return "", err
	}
	s, err := devSigner(dataDir)
	if err != nil {
		return "", err
	}
	std := jwt.Claims{
		Subject: sid.String(), Audience: jwt.Audience(audience),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(ttl)), ID: randomJTI(),
	}
	return jwt.Signed(s).Claims(std).Serialize()
}
