package sink_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/sink"
	"github.com/writhq/writ/internal/sink/natstest"
	"github.com/writhq/writ/internal/store/sqlite"
	"github.com/writhq/writ/internal/testkit"
)

const origin = "writ.test/sinks"

// logEnv is a real SQLite ledger whose commits are told to the sinks
// started on it, as the server's are.
type logEnv struct {
	st    *sqlite.Store
	led   *ledger.Ledger
	sinks atomic.Pointer[sink.Set]
	n     atomic.Int64
}

func newLog(t testing.TB) *logEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "writ.db"))
	if err != nil {
		t.Fatal(err)
	}
	kp, _, err := ledger.LoadOrCreateKey(dir, origin)
	if err != nil {
		t.Fatal(err)
	}
	l := &logEnv{st: st}
	l.led, err = ledger.New(ctx, ledger.Config{Store: st, Signer: kp, OnCommit: func(first uint64, evs []ledger.Event, leaves, hashes [][]byte) {
		if s := l.sinks.Load(); s != nil {
			s.Committed(first, evs, leaves, hashes)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.led.Close(context.Background())
		st.Close()
	})
	return l
}

// appendN appends n events, in commits of up to 500, and returns the
// log's size after them.
func (l *logEnv) appendN(t testing.TB, n int) uint64 {
	t.Helper()
	var last uint64
	for n > 0 {
		k := min(n, 500)
		evs := make([]ledger.Event, k)
		for j := range evs {
			i := l.n.Add(1)
			evs[j] = ledger.Event{Type: "import.test.tick", Time: time.Now(), TaskID: "tsk_" + strconv.FormatInt(i%7, 10),
				Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
		}
		first, err := l.led.AppendAll(context.Background(), evs)
		if err != nil {
			t.Fatal(err)
		}
		last, n = first+uint64(k)-1, n-k
	}
	return last + 1
}

// start starts sinks on the log; they are closed at the end of the test.
func (l *logEnv) start(t testing.TB, cfg sink.Config) *sink.Set {
	t.Helper()
	cfg.Store, cfg.Cursors, cfg.Origin = l.st, l.st, origin
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 200*time.Millisecond
	}
	s, err := sink.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	l.sinks.Store(s)
	s.Start()
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// leafHashes reads the hex leaf hash of every entry of the log.
func (l *logEnv) leafHashes(t testing.TB) []string {
	t.Helper()
	ctx := context.Background()
	size, err := l.st.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := l.st.ReadLeaves(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(leaves))
	for i, leaf := range leaves {
		out[i] = hex.EncodeToString(ledger.LeafHash(leaf))
	}
	return out
}

// delivered waits until the sink's cursor is at n.
func delivered(t testing.TB, l *logEnv, name string, n uint64) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, func() error {
		pos, err := l.st.Cursor(context.Background(), sink.CursorName(name))
		if err != nil {
			return err
		}
		if pos != n {
			return fmt.Errorf("cursor of sink %s at %d, want %d", name, pos, n)
		}
		return nil
	})
}

// streamed is one message of the stream.
type streamed struct {
	Subject, MsgID, Index, Origin, LeafHash string
	Data                                    []byte
}

// readStream reads every message of the stream.
func readStream(t testing.TB, ns *natstest.Server) []streamed {
	t.Helper()
	var out []streamed
	for _, m := range ns.Messages(t) {
		out = append(out, streamed{Subject: m.Subject, MsgID: m.Header.Get(jetstream.MsgIDHeader), Index: m.Header.Get(sink.IndexHeader),
			Origin: m.Header.Get(sink.OriginHeader), LeafHash: m.Header.Get(sink.LeafHashHeader), Data: m.Data})
	}
	return out
}

// checkComplete checks that got, once duplicates of an index are dropped,
// is every index from 0 to n-1 in order, perhaps followed by later ones
// the ledger holds (events recorded after n was read), and never an index
// the ledger does not hold; and that each message's leaf hash is its
// entry's.
func checkComplete(t testing.TB, got []streamed, origin string, hashes []string, n uint64) {
	t.Helper()
	var next uint64
	dups := 0
	for _, m := range got {
		i, err := strconv.ParseUint(m.Index, 10, 64)
		if err != nil {
			t.Fatalf("message %q: no index header", m.MsgID)
		}
		if m.MsgID != origin+"/"+m.Index || m.Origin != origin {
			t.Errorf("message %d: Nats-Msg-Id %q, origin %q", i, m.MsgID, m.Origin)
		}
		if i < next {
			dups++
			continue
		}
		if i > next {
			t.Fatalf("index %d follows %d: %d is missing or out of order", i, next-1, next)
		}
		if i >= uint64(len(hashes)) {
			t.Fatalf("message %d: the ledger holds only %d events", i, len(hashes))
		}
		if m.LeafHash != hashes[i] {
			t.Errorf("message %d: leaf hash %s, the ledger's is %s", i, m.LeafHash, hashes[i])
		}
		next++
	}
	if next < n {
		t.Fatalf("the stream holds indexes 0 to %d, want 0 to at least %d", int64(next)-1, n-1)
	}
	t.Logf("%d messages, %d events, %d delivered again and kept", len(got), next, dups)
}
