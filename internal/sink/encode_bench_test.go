package sink

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/sink/natstest"
	"github.com/writhq/writ/internal/store/sqlite"
)

// handed commits events to a real ledger and returns them as its commit
// hook hands them to a sink's follower: with their leaves and the leaves'
// hashes.
func handed(tb testing.TB, events []ledger.Event) []ledger.Entry {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "writ.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	kp, _, err := ledger.LoadOrCreateKey(dir, benchOrigin)
	if err != nil {
		tb.Fatal(err)
	}
	kept := &keeper{}
	f, err := ledger.NewFollower(ledger.FollowerConfig{Store: st, Consumer: kept, Leaves: true, HandOff: len(events)})
	if err != nil {
		tb.Fatal(err)
	}
	led, err := ledger.New(ctx, ledger.Config{Store: st, Signer: kp, OnCommit: f.Committed})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { led.Close(context.Background()) })
	if _, err := led.AppendAll(ctx, events); err != nil {
		tb.Fatal(err)
	}
	if err := f.SyncTo(ctx, uint64(len(events))); err != nil {
		tb.Fatal(err)
	}
	if len(kept.ents) != len(events) {
		tb.Fatalf("handed %d entries for %d", len(kept.ents), len(events))
	}
	return kept.ents
}

const benchOrigin = "writ.bench/ledger"

// keeper is a consumer that keeps what it is fed.
type keeper struct{ ents []ledger.Entry }

func (k *keeper) Position(context.Context) (uint64, error) { return uint64(len(k.ents)), nil }
func (k *keeper) Apply(_ context.Context, es []ledger.Entry) (uint64, error) {
	k.ents = append(k.ents, es...)
	return es[len(es)-1].Index + 1, nil
}

// calls are n action.authorized events as the decision API records them.
func calls(n int) []ledger.Event {
	evs := make([]ledger.Event, n)
	for i := range evs {
		evs[i] = ledger.Event{Type: ledger.TypeActionAuthorized, TaskID: fmt.Sprintf("tsk_%d", i%16), Principal: "alice@example.org",
			Agent: "spiffe://example.org/agent/summarizer", DecisionID: fmt.Sprintf("dec_%08d", i), PolicyVersion: fmt.Sprintf("sha256:%064x", 7),
			JTI: fmt.Sprintf("jti_%d", i%16), TraceID: "0af7651916cd43dd8448eb211c80319c",
			Data: json.RawMessage(fmt.Sprintf(`{"action_id":"act_%08d","tool":"invoices.read","operation":"read","resource":"erp://invoices/2026-Q3/%d",`+
				`"data_class":"confidential","args_mac":"hmac-sha256:%064x","effect":"allow","reasons":["in scope"],"obligations":{"max_ttl":"15m"},"policy_ids":["writ.action.allow"]}`, i, i, i))}
	}
	return evs
}

// BenchmarkEncode measures one sink's encoding of an event it is handed
// (per op: one action.authorized event), in each format.
//
//	go test ./internal/sink -run '^$' -bench Encode -count 3
func BenchmarkEncode(b *testing.B) {
	ents := handed(b, calls(4096))
	for _, format := range []string{config.FormatWrit, config.FormatCloudEvents, config.FormatOCSF} {
		b.Run(format, func(b *testing.B) {
			e := newEncoder(format, benchOrigin)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := e.encode(ents[i%len(ents)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkPublish measures a NATS sink's delivery to a real JetStream
// stream, in batches of 256 awaited for their acknowledgements (per op:
// one message).
//
//	go test ./internal/sink -run '^$' -bench Publish -count 3
func BenchmarkPublish(b *testing.B) {
	ns := natstest.Start(b)
	ns.AddStream(b, "writ.events")
	ents := handed(b, calls(4096))
	e := newEncoder(config.FormatOCSF, benchOrigin)
	msgs := make([]Message, len(ents))
	for i, ent := range ents {
		m, err := e.encode(ent)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = m
	}
	sc := config.SinkConfig{Name: "bench", Type: config.SinkNATS, URL: ns.URL(), Subject: "writ.events"}.WithDefaults()
	s := newNATSSink(sc, benchOrigin)
	b.Cleanup(func() { s.close() })
	const batch = 256
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += batch {
		k := min(batch, b.N-sent)
		from := sent % len(msgs)
		k = min(k, len(msgs)-from)
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := s.deliver(dctx, msgs[from:from+k]); err != nil {
			b.Fatal(err)
		}
		cancel()
		if k < batch && sent+k < b.N {
			sent -= batch - k
		}
	}
}
