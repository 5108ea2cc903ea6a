package gateway_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/server"
	"github.com/writhq/writ/internal/testkit"
)

// BenchmarkGatewayOverhead measures what the gateway adds to a tool call:
// the same echo call to the same Go SDK upstream, made directly and
// through writ (token check, policy decision, action.authorized durable
// before forwarding, action.completed with the result after), by workers
// clients at once. Direct and gateway calls alternate, so both see the
// same machine. Reported: each path's p50 and p99, and the differences.
func BenchmarkGatewayOverhead(b *testing.B) {
	for _, version := range []string{"2025-11-25", "2026-07-28"} {
		for _, workers := range []int{1, 16} {
			b.Run(fmt.Sprintf("protocol=%s/clients=%d", version, workers), func(b *testing.B) {
				benchOverhead(b, version, workers)
			})
		}
	}
}

// benchWrit starts the Go upstream, as server "up", behind a writ that
// logs only errors, and returns them with a task token for upScope.
func benchWrit(b *testing.B) (*goUpstream, *writ, string) {
	b.Helper()
	up := startGoUpstream(b)
	w := startWrit(b, config.MCPConfig{Servers: map[string]config.MCPServer{"up": {URL: up.url}}}, config.ProxyConfig{},
		func(c *config.Config) {
			c.Log.Level = "error"
			// On a machine running much else, a decision can wait for a core
			// past the default 50ms, and is then denied (fail closed); the
			// benchmarks measure latency, so they allow more.
			c.Policy.Timeout = time.Second
		})
	_, token := w.TaskToken(b, upScope)
	return up, w, token
}

func benchOverhead(b *testing.B, version string, workers int) {
	// As writ server runs (writ, the upstream and the clients share the
	// benchmark's process).
	defer server.TuneGC()()
	up, w, token := benchWrit(b)
	direct := make([]*mcp.ClientSession, workers)
	gw := make([]*mcp.ClientSession, workers)
	for i := range workers {
		direct[i] = goClient(b, up.url, "", version)
		gw[i] = goClient(b, w.URL+"/mcp/up", token, version)
	}
	args := map[string]any{"message": "benchmark"}
	call := func(cs *mcp.ClientSession) (time.Duration, error) {
		t0 := time.Now()
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: args})
		d := time.Since(t0)
		if err == nil && res.IsError {
			err = fmt.Errorf("tool error: %s", res.Content[0].(*mcp.TextContent).Text)
		}
		return d, err
	}
	// Warm both paths (connections, the gateway's upstream session).
	for i := range workers {
		if _, err := call(direct[i]); err != nil {
			b.Fatal(err)
		}
		if _, err := call(gw[i]); err != nil {
			b.Fatal(err)
		}
	}

	var next atomic.Int64
	var firstErr atomic.Value
	dl := make([][]time.Duration, workers)
	gl := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				d, err := call(direct[i])
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				g, err := call(gw[i])
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				dl[i] = append(dl[i], d)
				gl[i] = append(gl[i], g)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if err := firstErr.Load(); err != nil {
		b.Fatal(err)
	}
	d, g := slices.Concat(dl...), slices.Concat(gl...)
	slices.Sort(d)
	slices.Sort(g)
	pct := func(s []time.Duration, p float64) float64 {
		if len(s) == 0 {
			return 0
		}
		return float64(s[int(float64(len(s)-1)*p)]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(d, 0.50), "direct-p50-ms")
	b.ReportMetric(pct(d, 0.99), "direct-p99-ms")
	b.ReportMetric(pct(g, 0.50), "gateway-p50-ms")
	b.ReportMetric(pct(g, 0.99), "gateway-p99-ms")
	b.ReportMetric(pct(g, 0.50)-pct(d, 0.50), "added-p50-ms")
	b.ReportMetric(pct(g, 0.99)-pct(d, 0.99), "added-p99-ms")
}

// BenchmarkGatewayThroughput measures calls per second through the gateway
// and, beside it, made directly to the same upstream, each path alone, by
// clients closed-loop clients with a session each (all of one task): the
// gateway's capacity against the upstream's on the same machine. Reported
// with the p50 and p99 of a call, and the CPU time the whole process (the
// clients, the upstream and, through the gateway, writ) spent per call.
//
//	go test ./internal/gateway -run '^$' -bench GatewayThroughput -benchtime 5000x
func BenchmarkGatewayThroughput(b *testing.B) {
	for _, clients := range []int{16, 64} {
		for _, path := range []string{"direct", "gateway"} {
			b.Run(fmt.Sprintf("clients=%d/path=%s", clients, path), func(b *testing.B) {
				benchThroughput(b, path == "gateway", clients)
			})
		}
	}
}

func benchThroughput(b *testing.B, gateway bool, clients int) {
	defer server.TuneGC()()
	up, w, token := benchWrit(b)
	sessions := make([]*mcp.ClientSession, clients)
	for i := range clients {
		if gateway {
			sessions[i] = goClient(b, w.URL+"/mcp/up", token, "2025-11-25")
		} else {
			sessions[i] = goClient(b, up.url, "", "2025-11-25")
		}
	}
	args := map[string]any{"message": "benchmark"}
	call := func(cs *mcp.ClientSession) error {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: args})
		if err == nil && res.IsError {
			err = fmt.Errorf("tool error: %s", res.Content[0].(*mcp.TextContent).Text)
		}
		return err
	}
	for _, cs := range sessions {
		if err := call(cs); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	var firstErr atomic.Value
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	cpu0 := testkit.ProcessCPU(b)
	b.ResetTimer()
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := call(sessions[i]); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := testkit.ProcessCPU(b) - cpu0
	if err := firstErr.Load(); err != nil {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
	b.ReportMetric(float64(all[len(all)/2])/float64(time.Millisecond), "p50-ms")
	b.ReportMetric(float64(all[(len(all)-1)*99/100])/float64(time.Millisecond), "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/call")
}
