package credential

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/refusal"
)

// testNow is the fixed time tests issue and verify at.
var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// newTestIssuer returns an issuer over a fresh directory at testNow.
func newTestIssuer(t testing.TB, opts IssuerOptions) *Issuer {
	t.Helper()
	return newIssuerIn(t, t.TempDir(), opts)
}

func newIssuerIn(t testing.TB, dir string, opts IssuerOptions) *Issuer {
	t.Helper()
	if opts.Issuer == "" {
		opts.Issuer = "https://writ.example"
	}
	if opts.Now == nil {
		opts.Now = fixedClock(testNow)
	}
	iss, err := NewIssuer(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func testClaims() Claims {
	return Claims{
		Subject: "user:alice@example.org",
		Actors:  []string{"spiffe://example.org/agent/summarizer"},
		TaskID:  "01JTASK0000000000000000001",
		TTL:     10 * time.Minute,
	}
}

func mustIssue(t testing.TB, iss *Issuer, c Claims) (string, string) {
	t.Helper()
	tok, jti, err := iss.Issue(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok, jti
}

// tokensOfTasks issues a token of testClaims for each of the tasks task-0
// to task-(n-1).
func tokensOfTasks(t testing.TB, iss *Issuer, n int) []string {
	t.Helper()
	toks := make([]string, n)
	for k := range toks {
		c := testClaims()
		c.TaskID = fmt.Sprint("task-", k)
		toks[k], _ = mustIssue(t, iss, c)
	}
	return toks
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

// signRaw builds a compact JWS by hand so tests control every header byte.
// key is an ed25519.PrivateKey, *ecdsa.PrivateKey, *rsa.PrivateKey, a []byte
// HMAC secret, or nil for alg none.
func signRaw(t testing.TB, alg string, key any, header, claims map[string]any) string {
	t.Helper()
	h := map[string]any{"alg": alg}
	for k, v := range header {
		h[k] = v
	}
	input := b64JSON(t, h) + "." + b64JSON(t, claims)
	return input + "." + b64(signature(t, alg, key, []byte(input)))
}

func signature(t testing.TB, alg string, key any, input []byte) []byte {
	t.Helper()
	sum := sha256.Sum256(input)
	switch k := key.(type) {
	case nil:
		return nil
	case ed25519.PrivateKey:
		return ed25519.Sign(k, input)
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	case *rsa.PrivateKey:
		var sig []byte
		var err error
		if strings.HasPrefix(alg, "PS") {
			sig, err = rsa.SignPSS(rand.Reader, k, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
		}
		if err != nil {
			t.Fatal(err)
		}
		return sig
	case []byte:
		m := hmac.New(sha256.New, k)
		m.Write(input)
		return m.Sum(nil)
	}
	t.Fatalf("signature: unsupported key %T", key)
	return nil
}

// publicJWK is the JSON form of key's public half.
func publicJWK(t testing.TB, key crypto.Signer) map[string]any {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

type testKeys struct {
	ec     *ecdsa.PrivateKey
	ed     ed25519.PrivateKey
	rsa    *rsa.PrivateKey
	rsa1k  *rsa.PrivateKey
	otherE *ecdsa.PrivateKey
}

var keysOnce = func() func(testing.TB) *testKeys {
	var k *testKeys
	return func(t testing.TB) *testKeys {
		if k != nil {
			return k
		}
		ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		r, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		// 1024-bit keys need the rsa1024min=0 GODEBUG; build one by hand.
		r1k := smallRSA(t)
		k = &testKeys{ec: ec, ed: ed, rsa: r, rsa1k: r1k, otherE: other}
		return k
	}
}()

// smallRSA returns a 1024-bit RSA key, which crypto/rsa no longer generates,
// to test that proofs with short keys are refused.
func smallRSA(t testing.TB) *rsa.PrivateKey {
	for {
		p, err := rand.Prime(rand.Reader, 512)
		if err != nil {
			t.Fatal(err)
		}
		q, err := rand.Prime(rand.Reader, 512)
		if err != nil {
			t.Fatal(err)
		}
		n := new(big.Int).Mul(p, q)
		if n.BitLen() != 1024 || p.Cmp(q) == 0 {
			continue
		}
		return &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: 65537}}
	}
}

// proofOpts describe a DPoP proof; zero fields get valid defaults.
type proofOpts struct {
	alg    string
	key    crypto.Signer
	header map[string]any // replaces typ/jwk defaults when keys are present
	claims map[string]any // merged over the defaults; nil values delete
}

const testHTU = "https://writ.example/v1/authorize"

func makeProof(t testing.TB, o proofOpts, accessToken string) string {
	t.Helper()
	if o.key == nil {
		o.key = keysOnce(t).ec
	}
	if o.alg == "" {
		o.alg = "ES256"
	}
	h := map[string]any{"typ": DPoPProofType, "jwk": publicJWK(t, o.key)}
	for k, v := range o.header {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	c := map[string]any{"jti": b64(randBytes(12)), "htm": "POST", "htu": testHTU, "iat": testNow.Unix()}
	if accessToken != "" {
		c["ath"] = ATH(accessToken)
	}
	for k, v := range o.claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	var key any = o.key
	if o.alg == "HS256" {
		key = []byte("shared-secret-shared-secret-0123")
	}
	return signRaw(t, o.alg, key, h, c)
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// wantErr checks err against a sentinel (nil: no error expected).
func wantErr(t testing.TB, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("error = %v, want %v", err, want)
	}
	if err != nil {
		var e *refusal.Error
		if !errors.As(err, &e) {
			t.Fatalf("error %T is not a refusal (*refusal.Error)", err)
		}
		if bearer.Text(e.Detail) != e.Detail {
			t.Fatalf("description is not header-safe: %q", e.Detail)
		}
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
