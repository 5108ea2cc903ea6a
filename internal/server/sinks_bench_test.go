package server_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/sink/natstest"
	"github.com/writhq/writ/internal/testkit"
	"github.com/writhq/writ/internal/tracing/otlptest"
)

// BenchmarkAuthorizeSink is BenchmarkAuthorizeHTTP at 64 clients without
// a sink, with one NATS JetStream sink (a real nats-server; format writ,
// and format ocsf), and with the OCSF sink and tracing on (every span
// exported to a collector in the benchmark's process). With the sink it also reports its lag: for
// each event a consumer of the stream receives, the time from the event's
// record to its arrival, p50 and p99, over the whole run. The server, the
// NATS server, the collector and the consumer share the machine.
//
//	go test ./internal/server -run '^$' -bench AuthorizeSink -benchtime 20000x
func BenchmarkAuthorizeSink(b *testing.B) {
	for _, c := range []struct {
		sink    string
		tracing bool
	}{{"", false}, {config.FormatWrit, false}, {config.FormatOCSF, false}, {config.FormatOCSF, true}} {
		b.Run(fmt.Sprintf("sink=%s/tracing=%v/clients=64", cmp.Or(c.sink, "none"), c.tracing), func(b *testing.B) {
			cfg := benchConfig(b.TempDir())
			cfg.Policy.Timeout = 10 * time.Second
			if c.tracing {
				cfg.Tracing.Endpoint = otlptest.Start(b).URL
			}
			var lag *arrivals
			if c.sink != "" {
				ns := natstest.Start(b)
				ns.AddStream(b, "writ.events")
				cfg.Sinks = []config.SinkConfig{{Name: "siem", Type: config.SinkNATS, URL: ns.URL(), Subject: "writ.events", Format: c.sink}}
				lag = consume(b, ns)
			}
			ts := serve(b, cfg)
			loadAuthorize(b, []*testServer{ts}, 64)
			if lag == nil {
				return
			}
			testkit.Eventually(b, 60*time.Second, func() error {
				if st := ts.srv.Sinks().Statuses()[0]; st.Lag > 0 {
					return fmt.Errorf("sink lag %d", st.Lag)
				}
				return nil
			})
			// The stream's consumer may trail the sink's acknowledgements.
			testkit.Eventually(b, 60*time.Second, func() error {
				if _, _, n := lag.percentiles(); n < b.N {
					return fmt.Errorf("the stream's consumer received %d events for %d calls", n, b.N)
				}
				return nil
			})
			p50, p99, _ := lag.percentiles()
			b.ReportMetric(p50, "lag-p50-ms")
			b.ReportMetric(p99, "lag-p99-ms")
		})
	}
}

// arrivals are the delays of the events a stream consumer received.
type arrivals struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (a *arrivals) percentiles() (p50, p99 float64, n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := slices.Clone(a.delays)
	slices.Sort(d)
	if len(d) == 0 {
		return 0, 0, 0
	}
	ms := func(p float64) float64 { return float64(d[int(float64(len(d)-1)*p)]) / float64(time.Millisecond) }
	return ms(0.5), ms(0.99), len(d)
}

// consume follows the stream, noting for each message how long after its
// event's time it arrived.
func consume(b *testing.B, ns *natstest.Server) *arrivals {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := ns.Conn(b).OrderedConsumer(ctx, natstest.Stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	a := &arrivals{}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		now := time.Now()
		// writ's envelope has the event's time in event.time, an OCSF
		// record in time (milliseconds).
		var env struct {
			Event struct {
				Time time.Time `json:"time"`
			} `json:"event"`
			Time int64 `json:"time"`
		}
		if json.Unmarshal(m.Data(), &env) != nil {
			return
		}
		at := env.Event.Time
		if at.IsZero() && env.Time != 0 {
			at = time.UnixMilli(env.Time)
		}
		if !at.IsZero() {
			a.mu.Lock()
			a.delays = append(a.delays, now.Sub(at))
			a.mu.Unlock()
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cc.Stop)
	return a
}
