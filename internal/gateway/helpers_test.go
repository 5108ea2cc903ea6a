package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/credential"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/server"
)

const agent = "spiffe://writ.dev/agent/mcp"

// nodeDir is the test project holding the npm packages the end-to-end
// tests run. Without its node_modules the tests skip, except under CI,
// where a missing install step must fail.
func nodeDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "node"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js"))
	_, nerr := exec.LookPath("node")
	if err != nil || nerr != nil {
		msg := "MCP end-to-end tests need node and `npm ci --prefix internal/gateway/testdata/node`"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set: the install step is missing)")
		}
		t.Skip(msg)
	}
	return dir
}

// everythingMain is server-everything's entry point.
func everythingMain(dir string) string {
	return filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")
}

// freePort returns a TCP port nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startEverythingHTTP runs server-everything in Streamable HTTP mode and
// returns its MCP endpoint.
func startEverythingHTTP(t testing.TB) string {
	t.Helper()
	dir := nodeDir(t)
	port := freePort(t)
	cmd := exec.Command("node", everythingMain(dir), "streamableHttp")
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server-everything did not listen on %s: %s", addr, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "http://" + addr + "/mcp"
}

// writ is a running writ server for a test.
type writ struct {
	srv *server.Server
	url string
	dir string
	tok map[string]string // dev tokens of humans
}

// startWrit starts a dev writ server with mcp and proxy configured.
func startWrit(t testing.TB, mcp config.MCPConfig, proxy config.ProxyConfig) *writ {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir, cfg.Listen, cfg.Dev, cfg.Environment = dir, "127.0.0.1:0", true, "dev"
	cfg.MCP, cfg.Proxy = mcp, proxy
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server stopped with %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("server did not stop within 60s")
		}
	})
	w := &writ{srv: srv, url: "http://" + srv.Addr(), dir: dir, tok: map[string]string{}}
	for name, role := range map[string]identity.Role{"alice": identity.RoleRequester, "audrey": identity.RoleAuditor} {
		s, err := identity.DevToken(dir, name, []identity.Role{role}, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		w.tok[name] = s
	}
	return w
}

// do sends a JSON request with a bearer token and decodes a JSON answer.
func (w *writ) do(t testing.TB, method, path, token string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, w.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode
}

// taskToken opens an active task with scope for the test agent and
// returns its ID and a task token.
func (w *writ) taskToken(t testing.TB, sc api.Scope) (string, string) {
	t.Helper()
	var opened api.TaskOpened
	if st := w.do(t, "POST", "/v1/tasks", w.tok["alice"], api.OpenTask{Agent: agent, Intent: "exercise the MCP gateway", Scope: sc, TTL: "15m"}, &opened); st != http.StatusCreated {
		t.Fatalf("open task: %d %+v", st, opened)
	}
	if opened.State != "active" {
		t.Fatalf("task %s is %s, want active", opened.TaskID, opened.State)
	}
	return opened.TaskID, w.token(t, opened.TaskID)
}

// token exchanges the agent's dev SVID for a task token.
func (w *writ) token(t testing.TB, taskID string) string {
	t.Helper()
	svid, err := identity.DevSVID(w.dir, agent, []string{"writ"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {credential.GrantTypeTokenExchange}, "subject_token": {svid},
		"subject_token_type": {credential.TokenTypeJWT}, "scope": {"task:" + taskID}}
	resp, err := http.PostForm(w.url+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr api.TokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token exchange: %d %v", resp.StatusCode, err)
	}
	return tr.AccessToken
}

// event is the part of a ledger event the tests read.
type event struct {
	Type       string `json:"type"`
	DecisionID string `json:"decision_id"`
	TraceID    string `json:"trace_id"`
	Data       struct {
		ActionID string   `json:"action_id"`
		Tool     string   `json:"tool"`
		Resource string   `json:"resource"`
		Effect   string   `json:"effect"`
		Status   string   `json:"status"`
		Reason   string   `json:"reason"`
		Recorded bool     `json:"output_recorded"`
		Redacted []string `json:"redacted"`
		Listed   int      `json:"listed"`
		Hidden   []struct {
			Tool       string   `json:"tool"`
			DecisionID string   `json:"decision_id"`
			Reasons    []string `json:"reasons"`
		} `json:"hidden"`
	} `json:"data"`
}

// trace returns the task's ledger events, read through the trace API.
func (w *writ) trace(t testing.TB, taskID string) []event {
	t.Helper()
	var tr api.Trace
	if st := w.do(t, "GET", "/v1/tasks/"+taskID+"/trace", w.tok["audrey"], nil, &tr); st != http.StatusOK {
		t.Fatalf("trace: %d", st)
	}
	out := make([]event, len(tr.Events))
	for i, e := range tr.Events {
		if err := json.Unmarshal(e.Event, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func ofType(evs []event, typ string) []event {
	var out []event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}
