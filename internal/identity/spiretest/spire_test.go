package spiretest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/testkit"
)

// spireBin finds spire-server and spire-agent: in $WRIT_SPIRE_BIN, else on PATH.
func spireBin(t *testing.T, name string) string {
	t.Helper()
	if dir := os.Getenv("WRIT_SPIRE_BIN"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("WRIT_SPIRE_BIN: %v", err)
		}
		return p
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: set WRIT_SPIRE_BIN to the directory holding spire-server and spire-agent (see docs/identity.md)", name)
	}
	return p
}

// spire is one running SPIRE server (and optionally an agent).
type spire struct {
	t        *testing.T
	dir      string
	td       string
	port     int
	server   string // binary
	agent    string
	serverSk string
	agentSk  string
}

func start(t *testing.T, cmd *exec.Cmd, logName string) {
	t.Helper()
	logf, err := os.Create(logName)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logName)
			t.Logf("%s:\n%s", filepath.Base(logName), b)
		}
	})
}

// waitFor retries f until it succeeds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	if err := testkit.Poll(d, f); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (s *spire) run(args ...string) (string, error) {
	out, err := exec.Command(s.server, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("spire-server %s: %v: %s", args[0], err, out)
	}
	return string(out), nil
}

func startServer(t *testing.T, root, td string) *spire {
	// SPIRE binds the port named in its configuration, and the agent must
	// be told the same port: it cannot be left to the server to pick.
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &spire{t: t, td: td, dir: filepath.Join(root, td), port: port, server: spireBin(t, "spire-server")}
	s.serverSk = filepath.Join(s.dir, "s.sock")
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`server {
  bind_address = "127.0.0.1"
  bind_port = "%d"
  socket_path = %q
  trust_domain = %q
  data_dir = %q
  log_level = "WARN"
  ca_key_type = "ec-p256"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = %q
    }
  }
  KeyManager "memory" {
    plugin_data {}
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
}
`, s.port, s.serverSk, td, filepath.Join(s.dir, "data"), filepath.Join(s.dir, "data", "datastore.sqlite3"))
	confPath := filepath.Join(s.dir, "server.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, exec.Command(s.server, "run", "-config", confPath), filepath.Join(s.dir, "server.log"))
	waitFor(t, 60*time.Second, "spire-server healthcheck", func() error {
		_, err := s.run("healthcheck", "-socketPath", s.serverSk)
		return err
	})
	return s
}

// startAgent attests an agent with a join token and registers id for this
// process's uid (unix workload attestor).
func (s *spire) startAgent(t *testing.T, id string) {
	s.agent = spireBin(t, "spire-agent")
	s.agentSk = filepath.Join(s.dir, "a.sock")
	out, err := s.run("token", "generate", "-socketPath", s.serverSk, "-spiffeID", "spiffe://"+s.td+"/host")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`Token: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no join token in %q", out)
	}
	if _, err := s.run("entry", "create", "-socketPath", s.serverSk, "-parentID", "spiffe://"+s.td+"/host",
		"-spiffeID", id, "-selector", "unix:uid:"+strconv.Itoa(os.Getuid())); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`agent {
  data_dir = %q
  log_level = "WARN"
  server_address = "127.0.0.1"
  server_port = "%d"
  socket_path = %q
  trust_domain = %q
  insecure_bootstrap = true
  join_token = %q
}
plugins {
  KeyManager "memory" {
    plugin_data {}
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
`, filepath.Join(s.dir, "agent-data"), s.port, s.agentSk, s.td, m[1])
	confPath := filepath.Join(s.dir, "agent.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, exec.Command(s.agent, "run", "-config", confPath), filepath.Join(s.dir, "agent.log"))
	waitFor(t, 60*time.Second, "spire-agent healthcheck", func() error {
		out, err := exec.Command(s.agent, "healthcheck", "-socketPath", s.agentSk).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
}

func TestSPIRE(t *testing.T) {
	if os.Getenv("WRIT_TEST_SPIRE") != "1" {
		t.Skip("set WRIT_TEST_SPIRE=1 to run against a real SPIRE server and agent")
	}
	// Unix socket paths are limited to 108 bytes: keep them short.
	root, err := os.MkdirTemp("", "spire")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })

	const agentID = "spiffe://example.org/agent/summarizer"
	main := startServer(t, root, "example.org")
	main.startAgent(t, agentID)
	other := startServer(t, root, "other.org")

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	addr := workloadapi.WithAddr("unix://" + main.agentSk)

	// The registration reaches the agent within its sync interval.
	var svid *jwtsvid.SVID
	waitFor(t, 60*time.Second, "fetching a JWT-SVID over the Workload API", func() error {
		var err error
		svid, err = workloadapi.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "writ"}, addr)
		return err
	})

	cfg := config.DefaultIdentity()
	cfg.SPIFFE.WorkloadAPISocket = "unix://" + main.agentSk
	cfg.SPIFFE.TrustDomains = []config.TrustDomainConfig{{Name: "example.org", WorkloadAPI: true}}
	a, err := identity.New(ctx, cfg, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	p, err := a.VerifyToken(ctx, svid.Marshal())
	if err != nil {
		t.Fatalf("JWT-SVID from SPIRE refused: %v", err)
	}
	if p.ID != agentID || p.Method != identity.MethodJWTSVID || p.Kind != identity.KindAgent {
		t.Errorf("principal %+v", p)
	}

	// X.509-SVID from the same agent, as a TLS client certificate would carry it.
	x, err := workloadapi.FetchX509SVID(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: x.Certificates}
	if p, err := a.Authenticate(ctx, r); err != nil || p.ID != agentID || p.Method != identity.MethodX509SVID {
		t.Errorf("X.509-SVID from SPIRE: %+v, %v", p, err)
	}

	mint := func(s *spire, id, aud string) string {
		f := filepath.Join(s.dir, "minted.jwt")
		if _, err := s.run("jwt", "mint", "-socketPath", s.serverSk, "-spiffeID", id, "-audience", aud, "-ttl", "5m", "-write", f); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	refusals := []struct {
		name string
		tok  string
		want identity.Reason
	}{
		{"other trust domain", mint(other, "spiffe://other.org/agent/summarizer", "writ"), identity.ReasonWrongTrustDomain},
		{"wrong audience", mint(main, agentID, "not-writ"), identity.ReasonWrongAudience},
	}
	for _, tt := range refusals {
		_, err := a.VerifyToken(ctx, tt.tok)
		var e *refusal.Error
		if !errors.As(err, &e) || identity.Reason(e.Code) != tt.want {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}
}
