// Package credtest holds what tests of writ's task-token users share: an
// agent's DPoP key, making real RFC 9449 proofs.
package credtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/internal/credential"
)

// DPoPKey is an agent's DPoP key pair (P-256, ES256).
type DPoPKey struct {
	key    *ecdsa.PrivateKey
	signer jose.Signer
}

// NewDPoPKey generates a key.
func NewDPoPKey(t testing.TB) *DPoPKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k},
		(&jose.SignerOptions{EmbedJWK: true}).WithType(credential.DPoPProofType))
	if err != nil {
		t.Fatal(err)
	}
	return &DPoPKey{key: k, signer: s}
}

// Proof makes a DPoP proof for method and uri, bound to accessToken when
// it is not empty, with a fresh jti and the current time.
func (d *DPoPKey) Proof(t testing.TB, method, uri, accessToken string) string {
	t.Helper()
	jti := make([]byte, 12)
	rand.Read(jti)
	c := map[string]any{"jti": base64.RawURLEncoding.EncodeToString(jti), "htm": method, "htu": uri, "iat": time.Now().Unix()}
	if accessToken != "" {
		c["ath"] = credential.ATH(accessToken)
	}
	b, _ := json.Marshal(c)
	jws, err := d.signer.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// JKT is the key's RFC 7638 thumbprint, as a bound token's cnf.jkt.
func (d *DPoPKey) JKT(t testing.TB) string {
	t.Helper()
	j, err := credential.JKT(d.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return j
}
