package identity

import (
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// BenchmarkVerifyToken measures one bearer-token check: a full verification
// (parse, ES256 or RS256 signature, claims) with the cache off, and a cache
// hit (SHA-256 of the token and a map lookup).
func BenchmarkVerifyToken(b *testing.B) {
	w := newWorld(b)
	svid := sign(b, jose.ES256, w.ec, "spiffe-1", "JWT", svidClaims("spiffe://example.org/agent/x", nil))
	oidcES := sign(b, jose.ES256, w.ec, "oidc-1", "", oidcClaims(nil))
	oidcRS := sign(b, jose.RS256, w.rsa, "oidc-rsa", "", oidcClaims(nil))
	now := func() time.Time { return testNow }

	uncachedCfg := w.cfg
	uncachedCfg.CacheSize = 0
	uncached, err := New(b.Context(), uncachedCfg, Options{Now: now})
	if err != nil {
		b.Fatal(err)
	}
	cached, err := New(b.Context(), w.cfg, Options{Now: now})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		a    *Authenticator
		tok  string
	}{
		{"jwt-svid-ES256/uncached", uncached, svid},
		{"oidc-ES256/uncached", uncached, oidcES},
		{"oidc-RS256/uncached", uncached, oidcRS},
		{"jwt-svid-ES256/cached", cached, svid},
		{"oidc-RS256/cached", cached, oidcRS},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := bc.a.VerifyToken(b.Context(), bc.tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.tok)))
			for b.Loop() {
				if _, err := bc.a.VerifyToken(b.Context(), bc.tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("cached-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				cached.VerifyToken(b.Context(), svid)
			}
		})
	})
}
