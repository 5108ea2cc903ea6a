package sink_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/sink/natstest"
	"github.com/writhq/writ/internal/store/sqlite"
	"github.com/writhq/writ/internal/testkit"
)

// TestKilledUnderLoad runs `writ server` as a process with a NATS sink,
// loads it with the decision API benchmark, kills it with SIGKILL while
// it streams, starts it again, then stops and restarts the NATS server
// while the load goes on. Afterwards the stream holds every ledger index,
// in order, each with its leaf's hash (a redelivered event dropped by
// JetStream's duplicate window, or kept and skipped here by its index).
func TestKilledUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds writ and runs it as a process; skipped with -short")
	}
	ns := natstest.Start(t)
	ns.AddStream(t, "writ.events")
	bin := buildWrit(t)
	dir := filepath.Join(t.TempDir(), "data")
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	mport, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "writ.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, `metrics:
  listen: 127.0.0.1:%d
sinks:
  - {name: siem, type: nats, url: %q, subject: writ.events, format: writ, batch: 64, timeout: 2s}
`, mport, ns.URL()), 0o600)
	w := &writProc{t: t, bin: bin, dir: dir, cfg: cfg, url: "http://127.0.0.1:" + strconv.Itoa(port),
		metrics: "http://127.0.0.1:" + strconv.Itoa(mport) + "/metrics"}
	w.start()

	load := exec.Command(bin, "bench", "authorize", "--server", w.url, "--setup", "--dev-data-dir", dir,
		"--concurrency", "8", "--duration", "15s")
	var loadOut bytes.Buffer
	load.Stdout, load.Stderr = &loadOut, &loadOut
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	loadDone := make(chan struct{})
	var loadErr error
	go func() {
		loadErr = load.Wait()
		close(loadDone)
	}()
	t.Cleanup(func() {
		load.Process.Kill()
		<-loadDone
	})

	// Kill the server mid-stream, with events recorded and not yet
	// delivered, and start it again on the same data directory.
	w.grows(300)
	w.kill()
	w.start()
	// Stop the sink's server while the load goes on, then start it again.
	w.grows(300)
	ns.Stop()
	w.grows(300)
	ns.Start()
	<-loadDone
	t.Logf("load (%v):\n%s", loadErr, loadOut.String())

	// Everything recorded reaches the stream.
	var size uint64
	testkit.Eventually(t, 60*time.Second, func() error {
		m, err := w.scrape()
		if err != nil {
			return err
		}
		size = uint64(m["writ_ledger_size"])
		if lag := m[`writ_sink_lag_events{sink="siem"}`]; lag != 0 || size == 0 {
			return fmt.Errorf("ledger size %d, sink lag %v", size, lag)
		}
		return nil
	})
	w.stop()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	logOrigin, err := st.Meta(context.Background(), datadir.MetaOrigin)
	if err != nil {
		t.Fatal(err)
	}
	l := &logEnv{st: st}
	hashes := l.leafHashes(t)
	if uint64(len(hashes)) < size {
		t.Fatalf("the ledger holds %d events; the server reported %d", len(hashes), size)
	}
	checkComplete(t, readStream(t, ns), logOrigin, hashes, size)
}

// writProc is a `writ server --dev` process.
type writProc struct {
	t             *testing.T
	bin, dir, cfg string
	url, metrics  string
	cmd           *exec.Cmd
	done          chan struct{}
	logs          *testkit.Buffer
}

func (w *writProc) start() {
	w.t.Helper()
	w.logs = &testkit.Buffer{}
	w.cmd = exec.Command(w.bin, "server", "--dev", "--config", w.cfg, "--data-dir", w.dir)
	w.cmd.Env = append(os.Environ(), "WRIT_LISTEN="+strings.TrimPrefix(w.url, "http://"), "WRIT_CONFIG=")
	w.cmd.Stdout, w.cmd.Stderr = w.logs, w.logs
	if err := w.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	done := make(chan struct{})
	w.done = done
	cmd, logs := w.cmd, w.logs
	go func() {
		cmd.Wait()
		close(done)
	}()
	w.t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if l := logs.String(); strings.Contains(l, "panic:") || strings.Contains(l, "DATA RACE") {
			w.t.Errorf("writ server:\n%s", l)
		}
	})
	c := &http.Client{Timeout: time.Second}
	testkit.Eventually(w.t, 60*time.Second, func() error {
		select {
		case <-done:
			w.t.Fatalf("writ server exited:\n%s", logs.String())
		default:
		}
		return testkit.Ready(c, w.url+"/readyz")
	})
}

// kill ends the server with SIGKILL: no shutdown, no final delivery.
func (w *writProc) kill() {
	w.cmd.Process.Signal(syscall.SIGKILL)
	<-w.done
}

// stop interrupts the server, a graceful shutdown.
func (w *writProc) stop() {
	w.cmd.Process.Signal(os.Interrupt)
	select {
	case <-w.done:
	case <-time.After(60 * time.Second):
		w.t.Errorf("writ server did not stop within 60s")
		w.kill()
	}
}

// scrape reads the metrics listener's samples by series.
func (w *writProc) scrape() (map[string]float64, error) {
	resp, err := http.Get(w.metrics)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			key := name
			for _, l := range m.GetLabel() {
				key += fmt.Sprintf(`{%s=%q}`, l.GetName(), l.GetValue())
			}
			switch {
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			}
		}
	}
	return out, nil
}

// grows waits until the ledger has grown by n events.
func (w *writProc) grows(n float64) {
	w.t.Helper()
	var from float64 = -1
	testkit.Eventually(w.t, 60*time.Second, func() error {
		m, err := w.scrape()
		if err != nil {
			return err
		}
		size := m["writ_ledger_size"]
		if from < 0 {
			from = size
		}
		if size < from+n {
			return fmt.Errorf("the ledger grew from %v to %v, waiting for %v more", from, size, n)
		}
		return nil
	})
}

// buildWrit builds the writ command into a temporary directory.
func buildWrit(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "writ")
	cmd := exec.Command("go", "build", "-o", out, "github.com/writhq/writ/cmd/writ")
	if b, err := cmd.CombinedOutput(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			t.Skip("no go command to build writ with")
		}
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}
