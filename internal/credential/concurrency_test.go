package credential

import (
	"fmt"
	"sync"
	"testing"
)

// TestConcurrentVerifyAndRevoke runs verification, issuing and revocation at
// once (meaningful under -race) and checks that a revoked task's token is
// never accepted after RevokeTask returns.
func TestConcurrentVerifyAndRevoke(t *testing.T) {
	iss := newTestIssuer(t, IssuerOptions{CacheSize: 16})
	toks := tokensOfTasks(t, iss, 32)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for k := range 200 {
				tok := toks[(g*7+k)%len(toks)]
				iss.Verify(t.Context(), tok, testNow)
			}
		})
	}
	for k := range 16 {
		iss.Revocations().RevokeTask(fmt.Sprint("task-", k))
	}
	wg.Wait()
	for k, tok := range toks {
		_, err := iss.Verify(t.Context(), tok, testNow)
		if k < 16 {
			wantErr(t, err, ErrRevoked)
		} else if err != nil {
			t.Fatalf("task-%d: %v", k, err)
		}
	}
}
