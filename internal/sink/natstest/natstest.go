// Package natstest runs a real nats-server with JetStream for a test, on
// a port and a store directory of its own that survive a restart, and
// reads back what a stream holds. Without the nats-server binary the test
// is skipped, or fails when CI is set.
package natstest

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/writhq/writ/internal/testkit"
)

// Stream is the name of the stream AddStream creates.
const Stream = "WRIT"

// Server is a nats-server process.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary finds nats-server: $NATS_SERVER, the Debian package's path, then
// PATH. Without it the test is skipped, or fails under CI.
func Binary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("NATS_SERVER"), "/usr/sbin/nats-server", "/usr/bin/nats-server"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("nats-server is not installed (apt-get install nats-server); CI must run the NATS tests")
	}
	t.Skip("nats-server is not installed (apt-get install nats-server)")
	return ""
}

// Start starts a server with JetStream; it is stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, bin: Binary(t), dir: t.TempDir(), port: port}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's client URL.
func (s *Server) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// Start runs the server (again, after Stop) and waits until JetStream
// answers.
func (s *Server) Start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "-js", "-sd", s.dir, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port))
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	s.done = done
	cmd := s.cmd
	go func() {
		cmd.Wait()
		close(done)
	}()
	testkit.Eventually(s.t, 30*time.Second, func() error {
		nc, err := nats.Connect(s.URL(), nats.Timeout(time.Second))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = js.AccountInfo(ctx)
		return err
	})
}

// Stop stops the server as an operator would (SIGINT), killing it if it
// has not stopped within 20 seconds.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	testkit.Interrupt(s.cmd.Process, s.done, 20*time.Second)
	s.cmd = nil
}

// Conn connects a client of the test, closed when it ends.
func (s *Server) Conn(t testing.TB) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// AddStream creates the file-backed stream Stream taking subject.>, with
// a two-minute duplicate window.
func (s *Server) AddStream(t testing.TB, subject string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.Conn(t).CreateStream(ctx, jetstream.StreamConfig{Name: Stream, Subjects: []string{subject + ".>"},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
}

// Messages reads every message the stream holds, in its order.
func (s *Server) Messages(t testing.TB) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := s.Conn(t).Stream(ctx, Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}
