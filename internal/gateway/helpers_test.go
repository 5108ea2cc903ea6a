package gateway_test

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/gateway/gatewaytest"
	"github.com/writhq/writ/internal/testkit"
)

// writ is the running server a test drives.
type writ = gatewaytest.Writ

// startWrit starts a dev writ server with mcp and proxy configured.
func startWrit(t testing.TB, mcp config.MCPConfig, proxy config.ProxyConfig, opts ...func(*config.Config)) *writ {
	t.Helper()
	return gatewaytest.Start(t, mcp, proxy, opts...)
}

type event = gatewaytest.Event

var ofType = gatewaytest.OfType

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

// runNode runs script, a TypeScript SDK client of the node project dir,
// with args, and decodes the JSON it prints into out. It returns what the
// script printed.
func runNode(t testing.TB, dir string, out any, script string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("node", append([]string{script}, args...)...)
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("TypeScript client: %v: %s", err, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("TypeScript client said %s (%v)", b, err)
	}
	return b
}

// everythingMain is server-everything's entry point.
func everythingMain(dir string) string {
	return filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")
}

// startEverythingHTTP runs server-everything in Streamable HTTP mode and
// returns its MCP endpoint.
func startEverythingHTTP(t testing.TB) string {
	t.Helper()
	dir := nodeDir(t)
	// server-everything takes its port from $PORT and reports the value it
	// was given, not the port it bound, so it cannot be started on port 0.
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
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
	if err := testkit.Poll(30*time.Second, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("server-everything did not listen on %s: %v: %s", addr, err, logs.String())
	}
	return "http://" + addr + "/mcp"
}
