package credential

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-jose/go-jose/v4"
)

// KeyFile is the name of the signing key in the data directory: a PKCS#8
// Ed25519 private key in PEM, mode 0600. Deleting it rotates the key on the
// next start and invalidates every outstanding access token.
const KeyFile = "credential.key"

// loadOrCreateKey reads the signing key from dir, creating it on first use.
// The file is written under a temporary name and linked into place, so a
// crash never leaves a half-written key and two processes starting at once
// agree on one key. Errors name the file, never its contents.
func loadOrCreateKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, KeyFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := createKey(dir, path); err != nil {
			return nil, err
		}
	}
	return loadKeyFile(path)
}

// loadKeyFile reads a signing key that must already exist.
func loadKeyFile(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading credential signing key: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("credential signing key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("credential signing key %s is accessible by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	return parseKey(b, path)
}

func createKey(dir, path string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generating credential signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return errors.New("encoding credential signing key failed")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".credential.key-*")
	if err != nil {
		return fmt.Errorf("creating credential signing key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("writing credential signing key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Link fails if another process created the key first; then theirs wins.
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("installing credential signing key: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// parseKey decodes a PEM PKCS#8 Ed25519 key. Errors never include the key.
func parseKey(b []byte, path string) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("credential signing key %s is not a PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("credential signing key %s is not a valid PKCS#8 key", path)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("credential signing key %s is not an Ed25519 key", path)
	}
	return priv, nil
}

// JKT is the RFC 7638 JWK SHA-256 thumbprint of a public key, base64url
// without padding: the value of cnf.jkt for a DPoP key. pub is an
// *ecdsa.PublicKey, *rsa.PublicKey or ed25519.PublicKey.
func JKT(pub crypto.PublicKey) (string, error) {
	k := jose.JSONWebKey{Key: pub}
	if !k.Valid() || !k.IsPublic() {
		return "", errors.New("JKT: not a supported public key")
	}
	return thumbprint(&k)
}

func thumbprint(k *jose.JSONWebKey) (string, error) {
	sum, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", errors.New("cannot compute the key's JWK thumbprint")
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// X5T is the RFC 8705 certificate thumbprint of cert, base64url(SHA-256 of
// the DER) without padding: the value of cnf.x5t#S256 for an mTLS-bound token.
// It is "" for a nil certificate.
func X5T(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	return x5t(cert.Raw)
}
