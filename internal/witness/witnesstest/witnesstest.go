// Package witnesstest runs real C2SP witnesses for tests: litewitness,
// with its key in a dedicated ssh-agent and its log list set up with
// witnessctl. Tests that need one skip when the tools are missing, and
// fail instead when the environment variable CI is set.
package witnesstest

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/writhq/writ/internal/testkit"
	"github.com/writhq/writ/internal/witness"
)

// Tools are the programs a witness needs.
var Tools = []string{"litewitness", "witnessctl", "ssh-agent", "ssh-add", "ssh-keygen"}

// find returns the path of tool: on PATH, or where `go install` puts it.
func find(tool string) (string, error) {
	if p, err := exec.LookPath(tool); err == nil {
		return p, nil
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if d := os.Getenv("GOPATH"); d != "" {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	if h, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(h, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, tool)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (on PATH, in GOBIN or GOPATH/bin)", tool)
}

// Require returns the paths of the tools, skipping the test (failing it
// under CI) when one is missing.
func Require(t testing.TB) map[string]string {
	t.Helper()
	paths := map[string]string{}
	for _, tool := range Tools {
		p, err := find(tool)
		if err != nil {
			msg := err.Error() + "; install: go install filippo.io/torchwood/cmd/litewitness@v0.6.1 filippo.io/torchwood/cmd/witnessctl@v0.6.1, and openssh-client"
			if os.Getenv("CI") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		paths[tool] = p
	}
	return paths
}

// Witness is a running litewitness.
type Witness struct {
	// Name is the witness's name; Key its cosignature/v1 verifier key;
	// URL its submission prefix.
	Name string
	Key  string
	URL  string

	t      testing.TB
	tools  map[string]string
	dir    string
	sock   string
	fpr    string
	listen string
	db     string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	stderr *testkit.Buffer
}

// Start runs a litewitness named name that knows the log origin with the
// note verifier key logKey. It stops when the test ends.
func Start(t testing.TB, name, origin, logKey string) *Witness {
	t.Helper()
	w := &Witness{Name: name, t: t, tools: Require(t), dir: t.TempDir()}
	w.db = filepath.Join(w.dir, "litewitness.db")
	// A socket path must be short (about 100 bytes); test directories can
	// be long.
	sockDir, err := os.MkdirTemp("", "lw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	w.sock = filepath.Join(sockDir, "agent.sock")
	keyFile := filepath.Join(w.dir, "key")
	w.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", keyFile)
	pub, err := os.ReadFile(keyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	k, err := keyOf(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	w.Key = k.String()
	fields := strings.Fields(w.run("ssh-keygen", "-l", "-E", "sha256", "-f", keyFile+".pub"))
	if len(fields) < 2 || !strings.HasPrefix(fields[1], "SHA256:") {
		t.Fatalf("ssh-keygen -l printed %q", fields)
	}
	w.fpr = fields[1]
	w.startAgent(keyFile)
	w.run("witnessctl", "add-log", "-db", w.db, "-origin", origin)
	w.run("witnessctl", "add-key", "-db", w.db, "-origin", origin, "-key", logKey)
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	w.listen = "127.0.0.1:" + strconv.Itoa(port)
	w.URL = "http://" + w.listen + "/"
	w.Restart()
	// litewitness names its key at start: it must be the one derived here.
	testkit.Eventually(t, 10*time.Second, func() error {
		if s := w.stderr.String(); !strings.Contains(s, "vkey="+w.Key) {
			return fmt.Errorf("litewitness has not printed its verifier key %s yet:\n%s", w.Key, s)
		}
		return nil
	})
	t.Cleanup(w.Stop)
	return w
}

// keyOf derives a witness's cosignature/v1 key from its OpenSSH Ed25519
// public key line.
func keyOf(name string, line []byte) (*witness.Key, error) {
	f := strings.Fields(string(line))
	if len(f) < 2 || f[0] != "ssh-ed25519" {
		return nil, errors.New("not an ssh-ed25519 public key")
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return nil, err
	}
	var parts [][]byte
	for len(blob) >= 4 {
		n := binary.BigEndian.Uint32(blob)
		if uint64(len(blob)-4) < uint64(n) {
			return nil, errors.New("truncated ssh key")
		}
		parts, blob = append(parts, blob[4:4+n]), blob[4+n:]
	}
	if len(parts) != 2 || string(parts[0]) != "ssh-ed25519" || len(parts[1]) != ed25519.PublicKeySize {
		return nil, errors.New("not an ssh-ed25519 key blob")
	}
	return witness.NewKey(name, ed25519.PublicKey(parts[1]))
}

func (w *Witness) run(tool string, args ...string) string {
	w.t.Helper()
	cmd := exec.Command(w.tools[tool], args...)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+w.sock)
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startAgent runs a dedicated ssh-agent holding the witness's key.
func (w *Witness) startAgent(keyFile string) {
	w.t.Helper()
	agent := exec.Command(w.tools["ssh-agent"], "-D", "-a", w.sock)
	if err := agent.Start(); err != nil {
		w.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { agent.Wait(); close(done) }()
	w.t.Cleanup(func() {
		agent.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			agent.Process.Kill()
			<-done
		}
	})
	testkit.Eventually(w.t, 10*time.Second, func() error {
		c, err := net.Dial("unix", w.sock)
		if err != nil {
			return err
		}
		return c.Close()
	})
	w.run("ssh-add", "-q", keyFile)
}

// Restart starts litewitness (again, after Stop) on the same database and
// address, and waits until it answers.
func (w *Witness) Restart() {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd != nil {
		w.t.Fatal("witnesstest: Restart of a running witness")
	}
	if w.stderr == nil {
		w.stderr = &testkit.Buffer{}
	}
	cmd := exec.Command(w.tools["litewitness"], "-db", w.db, "-name", w.Name, "-key", w.fpr,
		"-ssh-agent", w.sock, "-listen", w.listen)
	cmd.Stdout, cmd.Stderr = w.stderr, w.stderr
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	w.cmd, w.exited = cmd, exited
	testkit.Eventually(w.t, 20*time.Second, func() error {
		select {
		case <-exited:
			return fmt.Errorf("litewitness exited:\n%s", w.stderr.String())
		default:
		}
		c, err := net.DialTimeout("tcp", w.listen, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// Stop stops litewitness (gracefully, as an interrupt does) and waits for
// it. Stopping a stopped witness does nothing.
func (w *Witness) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd == nil {
		return
	}
	testkit.Interrupt(w.cmd.Process, w.exited, 10*time.Second)
	w.cmd = nil
}

// Size returns the size of the log origin the witness has cosigned, as its
// database records it (witnessctl list-logs).
func (w *Witness) Size(origin string) uint64 {
	w.t.Helper()
	out := w.run("witnessctl", "list-logs", "-db", w.db)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var l struct {
			Origin string `json:"origin"`
			Size   uint64 `json:"size"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Origin == origin {
			return l.Size
		}
	}
	w.t.Fatalf("witness %s does not know log %s:\n%s", w.Name, origin, out)
	return 0
}

// Log returns what litewitness printed.
func (w *Witness) Log() string { return w.stderr.String() }

// Context is a context for one witness exchange in a test.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
