package sink_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/metrics"
	"github.com/writhq/writ/internal/notify"
	"github.com/writhq/writ/internal/sink"
	"github.com/writhq/writ/internal/sink/natstest"
	"github.com/writhq/writ/internal/testkit"
)

// writLine is writ's own envelope.
type writLine struct {
	Index    uint64          `json:"index"`
	Origin   string          `json:"origin"`
	LeafHash string          `json:"leaf_hash"`
	Event    json.RawMessage `json:"event"`
}

// recordIndex reads the ledger index of a record of any format.
func recordIndex(rec []byte) (uint64, error) {
	var r struct {
		Index     *uint64 `json:"index"`
		WritIndex *uint64 `json:"writindex"`
		Metadata  struct {
			Sequence *uint64 `json:"sequence"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(rec, &r); err != nil {
		return 0, err
	}
	for _, p := range []*uint64{r.Index, r.WritIndex, r.Metadata.Sequence} {
		if p != nil {
			return *p, nil
		}
	}
	return 0, fmt.Errorf("no index in %s", rec)
}

// readLines reads the JSONL files of a file sink, oldest first.
func readLines(t *testing.T, path string, kept int) []writLine {
	t.Helper()
	var out []writLine
	for i := kept; i >= 0; i-- {
		p := path
		if i > 0 {
			p = path + "." + strconv.Itoa(i)
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for line := range bytes.Lines(b) {
			var l writLine
			if err := json.Unmarshal(line, &l); err != nil {
				t.Fatalf("%s: %q: %v", p, line, err)
			}
			out = append(out, l)
		}
	}
	return out
}

func TestFileSinkRotates(t *testing.T) {
	l := newLog(t)
	path := filepath.Join(t.TempDir(), "out", "events.jsonl")
	l.start(t, sink.Config{Sinks: []config.SinkConfig{{Name: "archive", Type: config.SinkFile, Format: config.FormatWrit,
		Path: path, MaxBytes: 4096, MaxFiles: 3, Batch: 16}}})
	n := l.appendN(t, 300)
	delivered(t, l, "archive", n)

	// Only three rotated files are kept: the oldest lines are gone, what
	// is left runs in order to the last event.
	if _, err := os.Stat(path + ".4"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a fourth rotated file is kept: %v", err)
	}
	lines := readLines(t, path, 3)
	if len(lines) == 0 || lines[len(lines)-1].Index != n-1 {
		t.Fatalf("%d lines, the last not event %d", len(lines), n-1)
	}
	hashes := l.leafHashes(t)
	for i, ln := range lines {
		if i > 0 && ln.Index != lines[i-1].Index+1 {
			t.Fatalf("line %d: index %d after %d", i, ln.Index, lines[i-1].Index)
		}
		if ln.Origin != origin || ln.LeafHash != hashes[ln.Index] {
			t.Errorf("event %d: origin %q, leaf hash %s, want %s", ln.Index, ln.Origin, ln.LeafHash, hashes[ln.Index])
		}
		// The event is the leaf byte for byte: its RFC 6962 hash is the
		// leaf hash.
		h := sha256.Sum256(append([]byte{0}, ln.Event...))
		if hex.EncodeToString(h[:]) != ln.LeafHash {
			t.Errorf("event %d: the event member does not hash to its leaf hash", ln.Index)
		}
	}
	for _, p := range []string{path, path + ".1", path + ".2", path + ".3"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 4096 {
			t.Errorf("%s: %d bytes, past max_bytes", p, st.Size())
		}
	}
}

// TestFileSinkCutsPartialLine: a line a crash cut short is removed when
// the sink opens the file again, and the events after the cursor follow
// it whole.
func TestFileSinkCutsPartialLine(t *testing.T) {
	l := newLog(t)
	path := filepath.Join(t.TempDir(), "events.jsonl")
	cfg := sink.Config{Sinks: []config.SinkConfig{{Name: "archive", Type: config.SinkFile, Format: config.FormatWrit, Path: path}}}
	s := l.start(t, cfg)
	n := l.appendN(t, 5)
	delivered(t, l, "archive", n)
	s.Close(context.Background())
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"index":5,"origin":"writ.te`)
	f.Close()

	l.start(t, cfg)
	n = l.appendN(t, 3)
	delivered(t, l, "archive", n)
	lines := readLines(t, path, 0)
	if len(lines) != int(n) {
		t.Fatalf("%d lines, want %d", len(lines), n)
	}
	for i, ln := range lines {
		if ln.Index != uint64(i) {
			t.Fatalf("line %d holds event %d", i, ln.Index)
		}
	}
}

// receiver is an HTTP sink's destination: it checks each batch's
// signature and idempotency key, refuses as told, and keeps the records of
// the batches it accepts once per key, counting the batches sent again.
type receiver struct {
	t      *testing.T
	secret []byte
	token  string // Splunk HEC: the token it wants
	// refuse answers 503 to the next refuse requests; lose keeps the next
	// lose batches and answers 503, as if the answer were lost.
	refuse, lose atomic.Int32
	// hold, when set before the receiver serves, is called with the last
	// index of each batch it keeps, after keeping it and before answering.
	hold func(last uint64)

	mu      sync.Mutex
	keys    map[string]int
	repeats int // batches received again under a key already kept
	indexes []uint64
	bodies  [][]byte
	ctype   string
	bad     []string
}

func newReceiver(t *testing.T) *receiver {
	return &receiver{t: t, secret: []byte("a-secret-of-32-bytes-for-hmac..."), keys: map[string]int{}}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	status, last, kept := rc.take(r, body)
	if kept && rc.hold != nil {
		rc.hold(last)
	}
	if status != http.StatusOK {
		http.Error(w, http.StatusText(status), status)
		return
	}
	w.WriteHeader(status)
}

// take checks a batch and keeps its records unless its key was kept
// before. It returns the status to answer and, if it kept the batch, the
// batch's last index.
func (rc *receiver) take(r *http.Request, body []byte) (status int, last uint64, kept bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	fail := func(format string, args ...any) (int, uint64, bool) {
		rc.bad = append(rc.bad, fmt.Sprintf(format, args...))
		return http.StatusBadRequest, 0, false
	}
	if rc.token != "" {
		if r.Header.Get("Authorization") != "Splunk "+rc.token {
			return fail("Authorization %q", r.Header.Get("Authorization"))
		}
	} else if !notify.Verify(rc.secret, r.Header.Get(sink.TimestampHeader), body, r.Header.Get(sink.SignatureHeader)) {
		return fail("the signature does not verify")
	}
	key := r.Header.Get(sink.IdempotencyKeyHeader)
	if rc.refuse.Add(-1) >= 0 {
		return http.StatusServiceUnavailable, 0, false
	}
	rc.ctype = r.Header.Get("Content-Type")
	if rc.keys[key] > 0 {
		// Seen: acknowledged again, kept once.
		rc.keys[key]++
		rc.repeats++
		return http.StatusOK, 0, false
	}
	var records []json.RawMessage
	if rc.token != "" {
		dec := json.NewDecoder(bytes.NewReader(body))
		for {
			var ev struct {
				Event  json.RawMessage   `json:"event"`
				Fields map[string]string `json:"fields"`
				Time   float64           `json:"time"`
			}
			if err := dec.Decode(&ev); err == io.EOF {
				break
			} else if err != nil {
				return fail("HEC body: %v", err)
			}
			if ev.Fields["writ_origin"] != origin || ev.Fields["writ_leaf_hash"] == "" || ev.Time == 0 {
				return fail("HEC fields %v", ev.Fields)
			}
			records = append(records, ev.Event)
		}
	} else if err := json.Unmarshal(body, &records); err != nil {
		return fail("body: %v", err)
	}
	var first uint64
	for i, rec := range records {
		idx, err := recordIndex(rec)
		if err != nil {
			return fail("record: %v", err)
		}
		if i == 0 {
			first = idx
		}
		last = idx
		rc.indexes = append(rc.indexes, idx)
		rc.bodies = append(rc.bodies, rec)
	}
	if want := fmt.Sprintf("%s/%d-%d", origin, first, last); key != want {
		return fail("Idempotency-Key %q, want %q", key, want)
	}
	rc.keys[key]++
	if rc.lose.Add(-1) >= 0 {
		return http.StatusServiceUnavailable, last, true
	}
	return http.StatusOK, last, true
}

// received returns how many records the receiver keeps and how many
// batches it was sent again under a key it had kept.
func (rc *receiver) received() (records, repeats int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.indexes), rc.repeats
}

// check checks that the receiver holds every index below n, in order,
// each once.
func (rc *receiver) check(n uint64) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		return fmt.Errorf("refused: %v", rc.bad)
	}
	if uint64(len(rc.indexes)) != n {
		return fmt.Errorf("%d records, want %d", len(rc.indexes), n)
	}
	for i, idx := range rc.indexes {
		if idx != uint64(i) {
			return fmt.Errorf("record %d is event %d", i, idx)
		}
	}
	return nil
}

// covers checks that the receiver holds every index below n and none past
// it, in order with repeats: each record is at most one past the furthest
// before it, so a batch sent again goes back but nothing is skipped.
func (rc *receiver) covers(n uint64) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		return fmt.Errorf("refused: %v", rc.bad)
	}
	var next uint64 // one past the furthest record so far
	for i, idx := range rc.indexes {
		if idx > next {
			return fmt.Errorf("record %d is event %d, after event %d: events are missing", i, idx, next-1)
		}
		next = max(next, idx+1)
	}
	if next != n {
		return fmt.Errorf("records up to event %d, want %d", int64(next)-1, n-1)
	}
	return nil
}

func TestHTTPSink(t *testing.T) {
	l := newLog(t)
	rc := newReceiver(t)
	srv := httptest.NewServer(rc)
	defer srv.Close()
	secret := filepath.Join(t.TempDir(), "hmac")
	os.WriteFile(secret, append(rc.secret, '\n'), 0o600)
	rc.refuse.Store(3) // the receiver is down at first
	m := metrics.New(metrics.Config{})
	s := l.start(t, sink.Config{Metrics: m, Sinks: []config.SinkConfig{{Name: "hook", Type: config.SinkHTTP,
		Format: config.FormatWrit, URL: srv.URL, SecretFile: secret, Batch: 10}}})
	n := l.appendN(t, 95)
	testkit.Eventually(t, 30*time.Second, func() error { return rc.check(n) })
	delivered(t, l, "hook", n)
	if st := s.Statuses()[0]; st.Lag != 0 || !st.Active || st.Error != "" {
		t.Errorf("status %+v", st)
	}
	if rc.ctype != "application/json" {
		t.Errorf("Content-Type %q", rc.ctype)
	}
}

// TestHTTPSinkRetriesUnderItsKey: a batch the receiver took without its
// answer reaching the sink is sent again as it was, under its
// Idempotency-Key, though the log has grown since; what came after goes
// in batches of its own.
func TestHTTPSinkRetriesUnderItsKey(t *testing.T) {
	l := newLog(t)
	rc := newReceiver(t)
	held, release := make(chan uint64), make(chan struct{})
	var holding atomic.Bool
	rc.hold = func(last uint64) {
		if holding.CompareAndSwap(false, true) {
			held <- last
			<-release
		}
	}
	rc.lose.Store(1)
	srv := httptest.NewServer(rc)
	defer srv.Close()
	l.start(t, sink.Config{Getenv: func(string) string { return string(rc.secret) },
		Sinks: []config.SinkConfig{{Name: "hook", Type: config.SinkHTTP, Format: config.FormatWrit, URL: srv.URL,
			SecretEnv: "S", Batch: 10}}})
	n := l.appendN(t, 5)
	if last := <-held; last != n-1 {
		t.Fatalf("the first batch ends at %d, want %d", last, n-1)
	}
	// The log grows while the receiver holds the batch it will not answer.
	n = l.appendN(t, 20)
	close(release)
	testkit.Eventually(t, 30*time.Second, func() error { return rc.check(n) })
	delivered(t, l, "hook", n)
	if records, repeats := rc.received(); records != int(n) || repeats != 1 {
		t.Errorf("the receiver holds %d records and was sent %d batches again, want %d and 1", records, repeats, n)
	}
}

func TestHTTPSinkSplunkHEC(t *testing.T) {
	l := newLog(t)
	rc := newReceiver(t)
	rc.token = "0b5f3e8a-hec-token"
	srv := httptest.NewServer(rc)
	defer srv.Close()
	l.start(t, sink.Config{Getenv: func(k string) string {
		if k == "HEC_TOKEN" {
			return rc.token
		}
		return ""
	}, Sinks: []config.SinkConfig{{Name: "splunk", Type: config.SinkHTTP, Format: config.FormatWrit, URL: srv.URL,
		SplunkHEC: &config.SplunkHECConfig{TokenEnv: "HEC_TOKEN", Index: "writ"}, Batch: 7}}})
	n := l.appendN(t, 30)
	testkit.Eventually(t, 30*time.Second, func() error { return rc.check(n) })
}

// TestLagBound: a sink whose destination refuses falls behind; past its
// bound it is listed as lagging, with why, and its lag is in the metrics;
// once the destination takes batches again it catches up.
func TestLagBound(t *testing.T) {
	l := newLog(t)
	rc := newReceiver(t)
	srv := httptest.NewServer(rc)
	defer srv.Close()
	rc.refuse.Store(1 << 30)
	m := metrics.New(metrics.Config{})
	s := l.start(t, sink.Config{Metrics: m, Getenv: func(string) string { return string(rc.secret) },
		Sinks: []config.SinkConfig{{Name: "hook", Type: config.SinkHTTP, Format: config.FormatOCSF, URL: srv.URL,
			SecretEnv: "HMAC", LagBound: 20}}})
	l.appendN(t, 25)
	testkit.Eventually(t, 30*time.Second, func() error {
		lag := s.Lagging()
		if len(lag) != 1 || lag[0].Name != "hook" || lag[0].Lag != 25 || lag[0].Bound != 20 || !strings.Contains(lag[0].Error, "503") {
			return fmt.Errorf("lagging %+v", lag)
		}
		return nil
	})
	scrape := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	for _, want := range []string{`writ_sink_lag_events{sink="hook"} 25`, `writ_sink_lag_bound_events{sink="hook"} 20`} {
		if body := scrape(); !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	rc.refuse.Store(0)
	testkit.Eventually(t, 30*time.Second, func() error { return rc.check(25) })
	testkit.Eventually(t, 10*time.Second, func() error {
		if lag := s.Lagging(); len(lag) > 0 {
			return fmt.Errorf("still lagging: %+v", lag)
		}
		if body := scrape(); !strings.Contains(body, `writ_sink_lag_events{sink="hook"} 0`) {
			return errors.New("the lag gauge is not 0")
		}
		return nil
	})
}

// TestSecretsNeverShown: a secret that cannot be used is refused at start
// without its value in the error.
func TestSecretsNeverShown(t *testing.T) {
	l := newLog(t)
	short := "tooshort"
	_, err := sink.New(context.Background(), sink.Config{Store: l.st, Cursors: l.st, Origin: origin,
		Getenv: func(string) string { return short }, Sinks: []config.SinkConfig{{Name: "hook", Type: config.SinkHTTP,
			Format: config.FormatWrit, URL: "https://x.example/", SecretEnv: "HMAC"}}})
	if err == nil || strings.Contains(err.Error(), short) {
		t.Errorf("error %v", err)
	}
	_, err = sink.New(context.Background(), sink.Config{Store: l.st, Cursors: l.st, Origin: origin,
		Sinks: []config.SinkConfig{{Name: "hook", Type: config.SinkHTTP, Format: config.FormatWrit, URL: "https://x.example/",
			SecretFile: filepath.Join(t.TempDir(), "missing")}}})
	if err == nil || !strings.Contains(err.Error(), "secret file") {
		t.Errorf("error %v", err)
	}
}

func TestNATSSink(t *testing.T) {
	ns := natstest.Start(t)
	ns.AddStream(t, "writ.events")
	l := newLog(t)
	l.start(t, sink.Config{Sinks: []config.SinkConfig{{Name: "siem", Type: config.SinkNATS, Format: config.FormatCloudEvents,
		URL: ns.URL(), Subject: "writ.events", Batch: 50, Timeout: 2 * time.Second}}})
	n := l.appendN(t, 120)
	delivered(t, l, "siem", n)

	// The server stops while events keep coming, and starts again.
	ns.Stop()
	n = l.appendN(t, 80)
	ns.Start()
	n = l.appendN(t, 40)
	delivered(t, l, "siem", n)

	got := readStream(t, ns)
	checkComplete(t, got, origin, l.leafHashes(t), n)
	var ce struct {
		SpecVersion, ID, Source, Type string
		Data                          json.RawMessage
		WritIndex                     uint64
		WritLeafHash                  string
	}
	if err := json.Unmarshal(got[0].Data, &ce); err != nil {
		t.Fatal(err)
	}
	if got[0].Subject != "writ.events.import.test.tick" || ce.SpecVersion != "1.0" || ce.ID != origin+"/0" ||
		ce.Type != "writ.import.test.tick" || ce.Source != origin || ce.WritLeafHash != got[0].LeafHash {
		t.Errorf("first message: subject %s, %s", got[0].Subject, got[0].Data)
	}
}

// TestNATSSinkWithoutStream: a subject no stream takes is an error the
// sink reports and retries, delivering once the stream is there.
func TestNATSSinkWithoutStream(t *testing.T) {
	ns := natstest.Start(t)
	l := newLog(t)
	s := l.start(t, sink.Config{Sinks: []config.SinkConfig{{Name: "siem", Type: config.SinkNATS, Format: config.FormatWrit,
		URL: ns.URL(), Subject: "writ.events", Timeout: time.Second, LagBound: 1}}})
	n := l.appendN(t, 3)
	testkit.Eventually(t, 30*time.Second, func() error {
		if lag := s.Lagging(); len(lag) != 1 || !strings.Contains(lag[0].Error, "no JetStream stream") {
			return fmt.Errorf("lagging %+v", lag)
		}
		return nil
	})
	ns.AddStream(t, "writ.events")
	delivered(t, l, "siem", n)
	checkComplete(t, readStream(t, ns), origin, l.leafHashes(t), n)
}

// TestFormats: one event of every type, through a file sink in each
// format; every record names its index and origin and carries the leaf
// hash of the event's leaf.
func TestFormats(t *testing.T) {
	entries := sink.FixtureEvents(t)
	for _, format := range []string{config.FormatWrit, config.FormatCloudEvents, config.FormatOCSF} {
		t.Run(format, func(t *testing.T) {
			l := newLog(t)
			path := filepath.Join(t.TempDir(), "events.jsonl")
			l.start(t, sink.Config{Sinks: []config.SinkConfig{{Name: "f", Type: config.SinkFile, Format: format, Path: path}}})
			for _, ev := range entries {
				if _, err := l.led.Append(context.Background(), ev); err != nil {
					t.Fatal(err)
				}
			}
			delivered(t, l, "f", uint64(len(entries)))
			hashes := l.leafHashes(t)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<20)
			i := 0
			for ; sc.Scan(); i++ {
				var idx uint64
				var uid, hash string
				switch format {
				case config.FormatWrit:
					var l writLine
					json.Unmarshal(sc.Bytes(), &l)
					idx, uid, hash = l.Index, l.Origin+"/"+strconv.FormatUint(l.Index, 10), l.LeafHash
				case config.FormatCloudEvents:
					var ce struct {
						ID           string `json:"id"`
						WritIndex    uint64 `json:"writindex"`
						WritLeafHash string `json:"writleafhash"`
						Time         string `json:"time"`
						Type         string `json:"type"`
					}
					json.Unmarshal(sc.Bytes(), &ce)
					idx, uid, hash = ce.WritIndex, ce.ID, ce.WritLeafHash
					if ce.Type != "writ."+entries[i].Type || ce.Time == "" {
						t.Errorf("line %d: type %q time %q", i, ce.Type, ce.Time)
					}
				case config.FormatOCSF:
					var r struct {
						Metadata struct {
							UID      string  `json:"uid"`
							Sequence *uint64 `json:"sequence"`
							Version  string  `json:"version"`
						} `json:"metadata"`
						ClassUID int            `json:"class_uid"`
						Unmapped map[string]any `json:"unmapped"`
					}
					json.Unmarshal(sc.Bytes(), &r)
					if r.Metadata.Sequence != nil {
						idx = *r.Metadata.Sequence
					}
					uid, hash = r.Metadata.UID, fmt.Sprint(r.Unmapped["writ_leaf_hash"])
					if r.Metadata.Version == "" || r.Unmapped["writ_type"] != entries[i].Type {
						t.Errorf("line %d: %s", i, sc.Bytes())
					}
				}
				if idx != uint64(i) || uid != fmt.Sprintf("%s/%d", origin, i) || hash != hashes[i] {
					t.Errorf("line %d: index %d, id %q, leaf hash %s (want %s)", i, idx, uid, hash, hashes[i])
				}
			}
			if i != len(entries) {
				t.Errorf("%d lines, want %d", i, len(entries))
			}
		})
	}
}

// TestHandedCommitsNotReadBack: a sink handed this process's commits
// sends them, each leaf byte for byte, without reading them back from the
// store; what came before it started it reads from there.
func TestHandedCommitsNotReadBack(t *testing.T) {
	l := newLog(t)
	before := l.appendN(t, 40)
	path := filepath.Join(t.TempDir(), "events.jsonl")
	counted := &testkit.CountingStore{Store: l.st}
	s, err := sink.New(context.Background(), sink.Config{Store: counted, Cursors: l.st, Origin: origin,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Sinks: []config.SinkConfig{{Name: "archive", Type: config.SinkFile, Format: config.FormatWrit, Path: path}}})
	if err != nil {
		t.Fatal(err)
	}
	l.sinks.Store(s)
	s.Start()
	t.Cleanup(func() { s.Close(context.Background()) })
	delivered(t, l, "archive", before)
	readBefore := counted.Read.Load()
	n := l.appendN(t, 2000)
	delivered(t, l, "archive", n)
	if got := counted.Read.Load() - readBefore; got != 0 {
		t.Errorf("the sink read %d leaves back from the store after it was handed the commits", got)
	}
	leaves, err := l.st.ReadLeaves(context.Background(), 0, n)
	if err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path, 0)
	if uint64(len(lines)) != n {
		t.Fatalf("%d lines for %d events", len(lines), n)
	}
	for i, ln := range lines {
		if ln.Index != uint64(i) || !bytes.Equal(ln.Event, leaves[i]) {
			t.Fatalf("line %d: event %d is not the stored leaf byte for byte:\n%s\n%s", i, ln.Index, ln.Event, leaves[i])
		}
	}
}

// TestNATSSinkRefusedByStream: a message the stream refuses (larger than
// it takes) fails the delivery with JetStream's reason, which the sink
// reports and retries, delivering everything once the stream takes it.
func TestNATSSinkRefusedByStream(t *testing.T) {
	ns := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := jetstream.StreamConfig{Name: natstest.Stream, Subjects: []string{"writ.events.>"}, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Minute, MaxMsgSize: 64}
	if _, err := ns.Conn(t).CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	l := newLog(t)
	s := l.start(t, sink.Config{Sinks: []config.SinkConfig{{Name: "siem", Type: config.SinkNATS, Format: config.FormatWrit,
		URL: ns.URL(), Subject: "writ.events", Timeout: 5 * time.Second, LagBound: 1}}})
	n := l.appendN(t, 30)
	testkit.Eventually(t, 30*time.Second, func() error {
		if lag := s.Lagging(); len(lag) != 1 || !strings.Contains(lag[0].Error, "to writ.events.import.test.tick") ||
			!strings.Contains(lag[0].Error, "err_code=") {
			return fmt.Errorf("lagging %+v", lag)
		}
		return nil
	})
	cfg.MaxMsgSize = -1
	if _, err := ns.Conn(t).UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	delivered(t, l, "siem", n)
	checkComplete(t, readStream(t, ns), origin, l.leafHashes(t), n)
}
