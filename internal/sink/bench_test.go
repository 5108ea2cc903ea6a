package sink_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/sink"
	"github.com/writhq/writ/internal/sink/natstest"
)

// BenchmarkDeliver measures the events per second one sink delivers from
// a backlog: b.N events are in the ledger before it starts, and the
// benchmark ends when its cursor has passed the last (JetStream's
// acknowledgement, a 2xx answer, an fsync, for each batch of 256).
//
//	go test ./internal/sink -run '^$' -bench Deliver -benchtime 50000x
func BenchmarkDeliver(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  func(b *testing.B) config.SinkConfig
	}{
		{"nats", func(b *testing.B) config.SinkConfig {
			ns := natstest.Start(b)
			ns.AddStream(b, "writ.events")
			return config.SinkConfig{Type: config.SinkNATS, URL: ns.URL(), Subject: "writ.events"}
		}},
		{"http", func(b *testing.B) config.SinkConfig {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			b.Cleanup(srv.Close)
			return config.SinkConfig{Type: config.SinkHTTP, URL: srv.URL, SecretEnv: "S"}
		}},
		{"file", func(b *testing.B) config.SinkConfig {
			return config.SinkConfig{Type: config.SinkFile, Path: filepath.Join(b.TempDir(), "events.jsonl")}
		}},
	} {
		for _, format := range []string{config.FormatWrit, config.FormatOCSF} {
			b.Run(fmt.Sprintf("%s/%s", c.name, format), func(b *testing.B) {
				l := newLog(b)
				l.appendN(b, b.N)
				sc := c.cfg(b)
				sc.Name, sc.Format = "bench", format
				b.ResetTimer()
				start := time.Now()
				l.start(b, sink.Config{Sinks: []config.SinkConfig{sc}, Getenv: func(string) string { return "0123456789abcdef0123" }})
				delivered(b, l, "bench", uint64(b.N))
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			})
		}
	}
}
