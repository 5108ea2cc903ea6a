package sqlite_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/internal/store/sqlite"
)

// TestProofsSurviveReopen: a claimed proof is refused after the store is
// closed and opened again, and expired records are pruned.
func TestProofsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	s, err := sqlite.Open(ctx, path)
	must(t, err)
	key := []byte("0123456789abcdef0123456789abcdef")
	if fresh, err := s.ClaimProof(ctx, key, time.Now().Add(time.Minute)); err != nil || !fresh {
		t.Fatalf("claim: %v %v", fresh, err)
	}
	s.ClaimProof(ctx, []byte("expired-expired-expired-expired!"), time.Now().Add(-time.Hour))
	must(t, s.Close())
	s = openStore(t, path)
	if fresh, err := s.ClaimProof(ctx, key, time.Now().Add(time.Minute)); err != nil || fresh {
		t.Fatalf("claim after reopening: %v %v, want a replay", fresh, err)
	}
	// The first claim after opening prunes what expired.
	var n int
	must(t, s.DB().QueryRow(`SELECT count(*) FROM dpop_proofs WHERE until < ?`, time.Now().UnixNano()).Scan(&n))
	if n != 0 {
		t.Errorf("%d expired proofs kept after a prune", n)
	}
}

// BenchmarkClaimProof measures the durable record of one DPoP proof (one
// claim per bound call), alone and with 64 claimers at once sharing
// transactions.
func BenchmarkClaimProof(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("claimers=%d", n), func(b *testing.B) {
			s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), sqlite.FileName))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var left atomic.Int64
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			b.ResetTimer()
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					key := make([]byte, 32)
					for left.Add(-1) >= 0 {
						rand.Read(key)
						if fresh, err := s.ClaimProof(context.Background(), key, time.Now().Add(time.Minute)); err != nil || !fresh {
							b.Error(fresh, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "claims/s")
		})
	}
}
