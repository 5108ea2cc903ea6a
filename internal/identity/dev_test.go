package identity

import (
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/internal/config"
)

func TestDevIssuer(t *testing.T) {
	dir := t.TempDir()
	created, err := EnsureDevIssuer(dir)
	if err != nil || !created {
		t.Fatalf("first EnsureDevIssuer = %v, %v", created, err)
	}
	keyPath, jwksPath := DevPaths(dir)
	key1, _ := os.ReadFile(keyPath)
	if fi, _ := os.Stat(keyPath); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %04o, want 0600", fi.Mode().Perm())
	}
	os.Remove(jwksPath)
	created, err = EnsureDevIssuer(dir)
	if err != nil || created {
		t.Fatalf("second EnsureDevIssuer = %v, %v", created, err)
	}
	if key2, _ := os.ReadFile(keyPath); string(key1) != string(key2) {
		t.Errorf("EnsureDevIssuer replaced an existing key")
	}
	if _, err := os.Stat(jwksPath); err != nil {
		t.Errorf("JWKS not restored: %v", err)
	}

	now := time.Now()
	a, err := New(t.Context(), config.DefaultIdentity(), Options{Dev: true, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	tok, err := DevToken(dir, "alice", []Role{RoleRequester, RoleApprover}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.VerifyToken(t.Context(), tok)
	if err != nil {
		t.Fatalf("dev token refused: %v", err)
	}
	want := Principal{Kind: KindHuman, ID: "oidc:writ-dev#alice", Subject: "alice", Issuer: DevIssuer,
		Roles: []Role{RoleRequester, RoleApprover}, Method: MethodOIDC, Expiry: p.Expiry, JTI: p.JTI, Fingerprint: p.Fingerprint}
	if d := cmp.Diff(want, p); d != "" || p.JTI == "" || p.Expiry.Sub(now) > time.Hour {
		t.Errorf("dev principal (-want +got):\n%s", d)
	}
	svid, err := DevSVID(dir, "spiffe://writ.dev/agent/summarizer", []string{"writ"}, 5*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := a.VerifyToken(t.Context(), svid); err != nil || p.Method != MethodJWTSVID || p.ID != "spiffe://writ.dev/agent/summarizer" {
		t.Errorf("dev SVID: %+v, %v", p, err)
	}

	// Without Dev the same tokens are refused.
	plain, err := New(t.Context(), config.DefaultIdentity(), Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range []string{tok, svid} {
		if _, err := plain.VerifyToken(t.Context(), tk); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("non-dev authenticator accepted a dev token: %v", err)
		}
	}

	// Minting refusals.
	if _, err := DevSVID(dir, "spiffe://example.org/agent/x", []string{"writ"}, time.Minute, now); err == nil {
		t.Error("DevSVID signed for another trust domain")
	}
	if _, err := DevToken(dir, "alice", []Role{"root"}, time.Hour, now); err == nil {
		t.Error("DevToken accepted an unknown role")
	}
	if _, err := DevToken(dir, "alice", nil, 48*time.Hour, now); err == nil {
		t.Error("DevToken accepted a 48h ttl")
	}
	if _, err := DevToken(t.TempDir(), "alice", nil, time.Hour, now); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("DevToken without init: %v, want ErrNotExist", err)
	}

	// A key readable by others is refused.
	os.Chmod(keyPath, 0o644)
	if _, err := EnsureDevIssuer(dir); err == nil {
		t.Error("EnsureDevIssuer accepted a world-readable key")
	}
}
