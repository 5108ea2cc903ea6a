package gateway_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/gateway"
	"github.com/writhq/writ/internal/testkit"
)

// stdioChildren returns the PIDs of this process's children running
// server-everything over stdio (writ, in this process, started them).
func stdioChildren(t testing.TB) []int {
	t.Helper()
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	var out []int
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(s)
			cmd, _ := os.ReadFile("/proc/" + s + "/cmdline")
			if pid > 0 && strings.Contains(string(cmd), "server-everything") && strings.Contains(string(cmd), "stdio") {
				out = append(out, pid)
			}
		}
	}
	return out
}

// TestStdioSupervised: writ starts a stdio server with only the
// environment it is configured with, and starts it again after it dies.
func TestStdioSupervised(t *testing.T) {
	dir := nodeDir(t)
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("needs /proc to find the server's process")
	}
	t.Setenv("WRIT_E2E_UPSTREAM_KEY", "stdio-key-7")
	t.Setenv("WRIT_E2E_PRIVATE", "writs-own-setting")
	w := startWrit(t, config.MCPConfig{Servers: map[string]config.MCPServer{"everything": {
		Command: []string{"node", everythingMain(dir), "stdio"}, Timeout: 20 * time.Second,
		Env: map[string]string{"EVERYTHING_API_KEY": "${env:WRIT_E2E_UPSTREAM_KEY}"}}}}, config.ProxyConfig{})
	_, token := w.TaskToken(t, api.Scope{Tools: []string{"everything.echo", "everything.get-env"}, Resources: []string{"mcp://everything/*"},
		Operations: []string{"call"}, DataClass: "internal", Environments: []string{"dev"}})
	cs := goClient(t, w.URL+"/mcp/everything", token, "")

	res, err := callErr(t, cs, "get-env", map[string]any{})
	if err != nil || res.IsError {
		t.Fatalf("get-env: %v %+v", err, res)
	}
	env := res.Content[0].(*mcp.TextContent).Text
	if !strings.Contains(env, `"EVERYTHING_API_KEY": "stdio-key-7"`) || strings.Contains(env, "writs-own-setting") {
		t.Errorf("the stdio server's environment: want the configured key and none of writ's own settings; got %s", env)
	}

	pids := stdioChildren(t)
	if len(pids) != 1 {
		t.Fatalf("stdio server processes %v: want one", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The call that meets the dead process fails cleanly; a later one
	// reaches a new process.
	testkit.Eventually(t, 20*time.Second, func() error {
		res, err := callErr(t, cs, "echo", map[string]any{"message": "again"})
		if err == nil && !res.IsError {
			return nil
		}
		var we *jsonrpc.Error
		if !errors.As(err, &we) || we.Code != gateway.CodeUnavailable {
			t.Fatalf("echo after the server died: %v %+v", err, res)
		}
		return fmt.Errorf("the stdio server was not started again: %v", err)
	})
	if now := stdioChildren(t); len(now) != 1 || now[0] == pids[0] {
		t.Errorf("stdio server processes %v after a restart: want one new one (the old was %d)", now, pids[0])
	}
}
