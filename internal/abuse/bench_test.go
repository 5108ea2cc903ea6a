package abuse

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/writhq/writ/internal/config"
)

// BenchmarkMiddleware is the limiter's cost on the load benchmark's path:
// one address, one valid token, many clients at once; with the default
// limits (principal off) and with a per-principal bucket.
func BenchmarkMiddleware(b *testing.B) {
	for _, tt := range []struct {
		name      string
		principal config.Rate
	}{{"defaults", config.Rate{}}, {"principal", config.Rate{PerSecond: 1e6, Burst: 1e7}}} {
		b.Run(tt.name, func(b *testing.B) {
			cfg := config.DefaultRateLimits()
			cfg.Principal = tt.principal
			l, err := New(cfg, Options{Recorder: &memLedger{}})
			if err != nil {
				b.Fatal(err)
			}
			h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				l.Admit(w, r, "spiffe://writ.dev/agent/bench")
			}))
			b.SetParallelism(32) // 64 clients on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				r := httptest.NewRequest(http.MethodPost, "/v1/authorize", nil)
				r.RemoteAddr = "127.0.0.1:50000"
				r.Header.Set("Authorization", "Bearer x")
				w := httptest.NewRecorder()
				for pb.Next() {
					h.ServeHTTP(w, r)
				}
			})
		})
	}
}
