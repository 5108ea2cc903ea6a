package credential

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/http"
	"testing"
	"time"
)

// selfSigned makes a real self-signed client certificate.
func selfSigned(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestCheckBinding(t *testing.T) {
	k := keysOnce(t)
	jkt, _ := JKT(k.ec.Public())
	otherJKT, _ := JKT(k.otherE.Public())
	cert, other := selfSigned(t, "agent"), selfSigned(t, "agent")
	sum := sha256.Sum256(cert.Raw)
	if X5T(cert) != base64.RawURLEncoding.EncodeToString(sum[:]) || X5T(nil) != "" {
		t.Fatal("X5T is not base64url(SHA-256(DER))")
	}
	dpopTok := &Token{JTI: "j", TaskID: "t", Cnf: Cnf{JKT: jkt}}
	mtlsTok := &Token{JTI: "j", TaskID: "t", Cnf: Cnf{X5T: X5T(cert)}}
	bearer := &Token{JTI: "j", TaskID: "t"}
	for _, tc := range []struct {
		name    string
		tok     *Token
		jkt     string
		cert    *x509.Certificate
		require bool
		want    error
	}{
		{"dpop match", dpopTok, jkt, nil, true, nil},
		{"dpop other key", dpopTok, otherJKT, nil, false, ErrBindingMismatch},
		{"dpop no proof", dpopTok, "", cert, false, ErrBindingMismatch},
		{"mtls match", mtlsTok, "", cert, true, nil},
		{"mtls other cert", mtlsTok, "", other, false, ErrBindingMismatch},
		{"mtls no cert", mtlsTok, jkt, nil, false, ErrBindingMismatch},
		{"bearer allowed", bearer, "", nil, false, nil},
		{"bearer with stray proof", bearer, jkt, cert, false, nil},
		{"bearer required bound", bearer, "", nil, true, ErrBindingRequired},
		{"nil token", nil, "", nil, false, ErrInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, CheckBinding(tc.tok, tc.jkt, tc.cert, tc.require), tc.want)
		})
	}
}

// TestDPoPFlow runs the whole sender-constrained path: a proof at the token
// endpoint binds the token, and each later request proves the same key.
func TestDPoPFlow(t *testing.T) {
	iss := newTestIssuer(t, IssuerOptions{})
	replay := NewReplayCache(0)
	const tokenURL = "https://writ.example/oauth2/token"
	k := keysOnce(t)

	exchangeProof := makeProof(t, proofOpts{claims: map[string]any{"htu": tokenURL}}, "")
	jkt, err := VerifyDPoP(exchangeProof, http.MethodPost, tokenURL, "", testNow, replay)
	if err != nil {
		t.Fatal(err)
	}
	c := testClaims()
	c.Cnf.JKT = jkt
	access, _ := mustIssue(t, iss, c)

	tok, err := iss.Verify(t.Context(), access, testNow)
	if err != nil {
		t.Fatal(err)
	}
	proof := makeProof(t, proofOpts{}, access)
	got, err := VerifyDPoP(proof, http.MethodPost, testHTU, access, testNow, replay)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckBinding(tok, got, nil, true); err != nil {
		t.Fatalf("bound token with its own key's proof: %v", err)
	}
	// A thief with the token but another key: the proof verifies, the binding does not.
	stolen := makeProof(t, proofOpts{key: k.otherE}, access)
	thiefJKT, err := VerifyDPoP(stolen, http.MethodPost, testHTU, access, testNow, replay)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, CheckBinding(tok, thiefJKT, nil, true), ErrBindingMismatch)
}
