package credential

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNewIssuerKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	a := newIssuerIn(t, dir, IssuerOptions{})
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode = %v, want 0600", got)
	}
	// The kid is the RFC 7638 thumbprint, computed here without go-jose.
	canon := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(a.pub) + `"}`
	sum := sha256.Sum256([]byte(canon))
	if want := base64.RawURLEncoding.EncodeToString(sum[:]); a.KeyID() != want {
		t.Errorf("kid = %s, want RFC 7638 thumbprint %s", a.KeyID(), want)
	}
	// A second issuer on the same directory loads the same key and accepts
	// the first one's tokens.
	b := newIssuerIn(t, dir, IssuerOptions{})
	if a.KeyID() != b.KeyID() || string(a.JWKS()) != string(b.JWKS()) {
		t.Fatal("reloading the data directory changed the key")
	}
	tok, _ := mustIssue(t, a, testClaims())
	if _, err := b.Verify(t.Context(), tok, testNow); err != nil {
		t.Fatalf("reloaded issuer refuses its own token: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data directory holds %d files, want only %s", len(entries), KeyFile)
	}
}

func TestNewIssuerRefuses(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString([]byte("real+key: not DER at all, but secret"))
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		opts          IssuerOptions
		want          string
	}{
		{name: "no issuer", opts: IssuerOptions{Now: time.Now}, want: "Issuer"},
		{name: "group readable", content: "x", mode: 0o640, opts: IssuerOptions{Issuer: "writ"}, want: "chmod 600"},
		{name: "garbage", content: "-----BEGIN PRIVATE KEY-----\n" + secret + "\n-----END PRIVATE KEY-----\n", mode: 0o600, opts: IssuerOptions{Issuer: "writ"}, want: "not a valid PKCS#8 key"},
		{name: "not pem", content: secret, mode: 0o600, opts: IssuerOptions{Issuer: "writ"}, want: "not a PEM"},
		{name: "short max ttl", opts: IssuerOptions{Issuer: "writ", MaxTTL: time.Millisecond}, want: "MaxTTL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.content != "" {
				if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte(tc.content), tc.mode); err != nil {
					t.Fatal(err)
				}
				os.Chmod(filepath.Join(dir, KeyFile), tc.mode)
			}
			_, err := NewIssuer(dir, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewIssuer error = %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret[:16]) {
				t.Fatalf("error reveals key file contents: %v", err)
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	iss := newTestIssuer(t, IssuerOptions{})
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(iss.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{{
		"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
		"kid": iss.KeyID(), "x": base64.RawURLEncoding.EncodeToString(iss.pub),
	}}
	if diff := cmp.Diff(want, set.Keys); diff != "" {
		t.Errorf("JWKS (-want +got):\n%s", diff)
	}
}

// TestIssuedClaims pins the wire format of an access token: header and
// every claim, including nested act chains and cnf.
func TestIssuedClaims(t *testing.T) {
	iss := newTestIssuer(t, IssuerOptions{Issuer: "writ"})
	jkt := b64(make([]byte, 32))
	c := testClaims()
	c.Actors = []string{"spiffe://example.org/agent/child", "spiffe://example.org/agent/parent", "spiffe://example.org/agent/root"}
	c.Cnf = Cnf{JKT: jkt}
	tok, jti := mustIssue(t, iss, c)
	parts := strings.Split(tok, ".")
	var header, claims map[string]any
	for k, v := range map[int]*map[string]any{0: &header, 1: &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[k])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(map[string]any{"alg": "EdDSA", "kid": iss.KeyID(), "typ": "at+jwt"}, header); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	now := float64(testNow.Unix())
	want := map[string]any{
		"iss": "writ", "sub": "user:alice@example.org", "aud": "writ",
		"act": map[string]any{"sub": "spiffe://example.org/agent/child",
			"act": map[string]any{"sub": "spiffe://example.org/agent/parent",
				"act": map[string]any{"sub": "spiffe://example.org/agent/root"}}},
		"txn": c.TaskID, "scope": "task:" + c.TaskID, "jti": jti,
		"iat": now, "nbf": now, "exp": now + 600,
		"cnf": map[string]any{"jkt": jkt},
	}
	if diff := cmp.Diff(want, claims); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	if raw, _ := base64.RawURLEncoding.DecodeString(jti); len(raw) != 16 {
		t.Errorf("jti %q is not 128 random bits", jti)
	}
	if sig, _ := base64.RawURLEncoding.DecodeString(parts[2]); !ed25519.Verify(iss.pub, []byte(parts[0]+"."+parts[1]), sig) {
		t.Error("signature does not verify with the JWKS key")
	}
}

func TestIssueRefuses(t *testing.T) {
	iss := newTestIssuer(t, IssuerOptions{MaxTTL: 30 * time.Minute})
	thumb := b64(make([]byte, 32))
	for _, tc := range []struct {
		name   string
		modify func(*Claims)
	}{
		{"no subject", func(c *Claims) { c.Subject = "" }},
		{"no task", func(c *Claims) { c.TaskID = "" }},
		{"task id with space", func(c *Claims) { c.TaskID = "a b" }},
		{"no actors", func(c *Claims) { c.Actors = nil }},
		{"empty actor", func(c *Claims) { c.Actors = []string{"a", ""} }},
		{"chain too deep", func(c *Claims) { c.Actors = make([]string, MaxActorDepth+1) }},
		{"zero ttl", func(c *Claims) { c.TTL = 0 }},
		{"fractional ttl", func(c *Claims) { c.TTL = 1500 * time.Millisecond }},
		{"ttl over max", func(c *Claims) { c.TTL = 31 * time.Minute }},
		{"both bindings", func(c *Claims) { c.Cnf = Cnf{JKT: thumb, X5T: thumb} }},
		{"bad jkt", func(c *Claims) { c.Cnf = Cnf{JKT: "abc"} }},
		{"bad x5t", func(c *Claims) { c.Cnf = Cnf{X5T: thumb + "A"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testClaims()
			tc.modify(&c)
			if tok, _, err := iss.Issue(c); err == nil {
				t.Fatalf("Issue accepted %+v: %s", c, tok)
			}
		})
	}
}
