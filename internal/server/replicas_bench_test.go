package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
)

// BenchmarkAuthorizeHTTPPostgres is BenchmarkAuthorizeHTTP on PostgreSQL,
// with 1 and 3 replicas in this process sharing one database; 64 clients
// send their calls round-robin over the replicas.
//
//	WRIT_TEST_POSTGRES_DSN=postgres://… go test ./internal/server -run '^$' -bench AuthorizeHTTPPostgres -benchtime 20000x
func BenchmarkAuthorizeHTTPPostgres(b *testing.B) {
	for _, replicas := range []int{1, 3} {
		b.Run(fmt.Sprintf("replicas=%d/clients=64", replicas), func(b *testing.B) {
			benchAuthorizeReplicas(b, replicas, 64)
		})
	}
}

func benchAuthorizeReplicas(b *testing.B, replicas, clients int) {
	dsn := pgtest.DSN(b)
	var servers []*testServer
	first := b.TempDir()
	for i := range replicas {
		cfg := benchConfig(first)
		cfg.Store, cfg.DSN = config.StorePostgres, dsn
		// Several servers share two cores with the clients here: a
		// starved evaluation past the default 50ms would deny.
		cfg.Policy.Timeout = time.Second
		if i > 0 {
			cfg.DataDir = b.TempDir()
			replicaOf(b, &cfg, first)
		}
		servers = append(servers, serve(b, cfg))
	}
	loadAuthorize(b, servers, clients)
}
