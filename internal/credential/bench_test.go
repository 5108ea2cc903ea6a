package credential

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// BenchmarkVerify measures one access-token check including the revocation
// lookup: uncached (parse, Ed25519 signature, claims) and cached (SHA-256 of
// the token, a map lookup, time checks and a copy), against a revocation set
// of 10,000 jtis and 10,000 tasks.
func BenchmarkVerify(b *testing.B) {
	uncached := newTestIssuer(b, IssuerOptions{CacheSize: -1})
	cached := newTestIssuer(b, IssuerOptions{})
	c := testClaims()
	c.Actors = []string{"spiffe://example.org/agent/child", "spiffe://example.org/agent/parent"}
	c.Cnf.JKT = b64(make([]byte, 32))
	for _, iss := range []*Issuer{uncached, cached} {
		for k := range 10_000 {
			iss.Revocations().RevokeJTI(fmt.Sprint("jti-", k), testNow.Add(time.Hour))
			iss.Revocations().RevokeTask(fmt.Sprint("task-", k))
		}
	}
	for _, bc := range []struct {
		name string
		iss  *Issuer
	}{{"uncached", uncached}, {"cached", cached}} {
		tok, _ := mustIssue(b, bc.iss, c)
		b.Run(bc.name, func(b *testing.B) {
			if _, err := bc.iss.Verify(b.Context(), tok, testNow); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(tok)))
			for b.Loop() {
				if _, err := bc.iss.Verify(b.Context(), tok, testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	tok, _ := mustIssue(b, cached, c)
	cached.Verify(b.Context(), tok, testNow)
	b.Run("cached-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := cached.Verify(b.Context(), tok, testNow); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkIsRevoked is the revocation lookup alone.
func BenchmarkIsRevoked(b *testing.B) {
	r := newTestIssuer(b, IssuerOptions{}).Revocations()
	for k := range 100_000 {
		r.RevokeJTI(fmt.Sprint("jti-", k), testNow.Add(time.Hour))
	}
	tok := &Token{JTI: "not-revoked", TaskID: "01JTASK0000000000000000001"}
	b.ReportAllocs()
	for b.Loop() {
		if r.IsRevoked(tok) {
			b.Fatal("revoked")
		}
	}
}

// BenchmarkVerifyDPoP measures proof verification with ath, per algorithm.
// Each iteration needs a fresh jti, so proofs are made ahead of the timer.
func BenchmarkVerifyDPoP(b *testing.B) {
	k := keysOnce(b)
	const at = "access.token.value"
	for _, bc := range []proofOpts{{alg: "ES256", key: k.ec}, {alg: "EdDSA", key: k.ed}, {alg: "RS256", key: k.rsa}} {
		b.Run(bc.alg, func(b *testing.B) {
			const n = 2048
			proofs := make([]string, n)
			for i := range proofs {
				proofs[i] = makeProof(b, bc, at)
			}
			replay := NewReplayCache(0)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i%n == 0 {
					replay = NewReplayCache(0)
				}
				if _, err := VerifyDPoP(proofs[i%n], http.MethodPost, testHTU, at, testNow, replay); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkIssue measures minting one access token.
func BenchmarkIssue(b *testing.B) {
	iss := newTestIssuer(b, IssuerOptions{})
	c := testClaims()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := iss.Issue(c); err != nil {
			b.Fatal(err)
		}
	}
}
