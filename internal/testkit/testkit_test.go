package testkit_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/testkit"
)

func TestPoll(t *testing.T) {
	var n atomic.Int32
	err := testkit.Poll(10*time.Second, func() error {
		if n.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n.Load() != 3 {
		t.Errorf("Poll: %v after %d tries, want nil after 3", err, n.Load())
	}
	start := time.Now()
	err = testkit.Poll(30*time.Millisecond, func() error { return errors.New("never") })
	if err == nil || err.Error() != "never" {
		t.Errorf("Poll of a condition that never holds: %v, want its last error", err)
	}
	if time.Since(start) < 30*time.Millisecond {
		t.Errorf("Poll gave up after %s, before its deadline", time.Since(start))
	}
}

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := testkit.NewClock(t0)
	c.Add(time.Minute)
	if got := c.Now(); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("Now after Add(1m): %s, want %s", got, t0.Add(time.Minute))
	}
}

func TestFreePort(t *testing.T) {
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listening on the port FreePort returned: %v", err)
	}
	ln.Close()
}

func TestRecorder(t *testing.T) {
	var r testkit.Recorder
	ctx := context.Background()
	for i, typ := range []string{"a.one", "a.two"} {
		if idx, err := r.Append(ctx, ledger.Event{Type: typ}); err != nil || idx != uint64(i) {
			t.Fatalf("Append %s: index %d, %v; want %d", typ, idx, err, i)
		}
	}
	broken := errors.New("disk full")
	r.Fail(broken)
	if _, err := r.Append(ctx, ledger.Event{Type: "a.three"}); !errors.Is(err, broken) {
		t.Errorf("Append after Fail: %v, want %v", err, broken)
	}
	r.Fail(nil)
	if got := r.Events(); len(got) != 2 || got[0].Type != "a.one" || got[1].Type != "a.two" {
		t.Errorf("Events: %+v, want a.one and a.two", got)
	}
	r.Reset()
	if got := r.Events(); len(got) != 0 {
		t.Errorf("Events after Reset: %+v", got)
	}
}

func TestInterrupt(t *testing.T) {
	start := func(script string) (*exec.Cmd, chan struct{}) {
		cmd := exec.Command("sh", "-c", script)
		if err := cmd.Start(); err != nil {
			t.Skip("no sh:", err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		return cmd, done
	}
	cmd, done := start("exec sleep 30")
	if !testkit.Interrupt(cmd.Process, done, 10*time.Second) {
		t.Error("a process that stops on SIGINT was killed")
	}
	// One that ignores the interrupt is killed once the grace is over.
	cmd, done = start(`trap "" INT; sleep 30 & wait`)
	time.Sleep(100 * time.Millisecond) // let the shell set its trap
	if testkit.Interrupt(cmd.Process, done, 200*time.Millisecond) {
		t.Error("a process that ignores SIGINT reported stopped on it")
	}
}

func TestReady(t *testing.T) {
	status := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
	defer srv.Close()
	if err := testkit.Ready(srv.Client(), srv.URL+"/readyz"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("Ready of a 503: %v", err)
	}
	status = http.StatusOK
	if err := testkit.Ready(srv.Client(), srv.URL+"/readyz"); err != nil {
		t.Errorf("Ready of a 200: %v", err)
	}
}
