package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExpandSecrets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"API_KEY": "k-123"}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct{ in, want, err string }{
		{"Bearer ${file:" + file + "}", "Bearer s3cret", ""},
		{"${env:API_KEY}/${env:API_KEY}", "k-123/k-123", ""},
		{"plain $5 and $$ and $", "plain $5 and $ and $", ""},
		{"${env:MISSING}", "", "environment variable MISSING is not set"},
		{"${file:" + filepath.Join(dir, "nope") + "}", "", "cannot be read"},
		{"${vault:x}", "", "want ${file:PATH} or ${env:NAME}"},
		{"${env:API_KEY", "", "unterminated"},
	} {
		got, err := ExpandSecrets(tc.in, getenv)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ExpandSecrets(%q): %v, want error %q", tc.in, err, tc.err)
			}
			if err != nil && (strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "k-123")) {
				t.Errorf("error %q reveals a secret", err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ExpandSecrets(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestGatewayValidate(t *testing.T) {
	ok := MCPServer{URL: "http://127.0.0.1:3001/mcp", Timeout: time.Second}
	for _, tc := range []struct {
		name string
		mcp  MCPConfig
		want string
	}{
		{"valid", MCPConfig{Servers: map[string]MCPServer{"everything": ok}}, ""},
		{"bad name", MCPConfig{Servers: map[string]MCPServer{"Every Thing": ok}}, "name must be"},
		{"both", MCPConfig{Servers: map[string]MCPServer{"x": {URL: ok.URL, Command: []string{"srv"}}}}, "exactly one of url and command"},
		{"neither", MCPConfig{Servers: map[string]MCPServer{"x": {}}}, "exactly one of url and command"},
		{"bad url", MCPConfig{Servers: map[string]MCPServer{"x": {URL: "ftp://h"}}}, "absolute http"},
		{"bad ref", MCPConfig{Servers: map[string]MCPServer{"x": {URL: ok.URL, Headers: map[string]string{"A": "${nope}"}}}}, "want ${file:PATH}"},
		{"bad class", MCPConfig{Servers: map[string]MCPServer{"x": {URL: ok.URL, DataClass: "secret"}}}, "data_class"},
		{"tool timeout", MCPConfig{Servers: map[string]MCPServer{"x": {URL: ok.URL, Tools: map[string]MCPTool{"t": {Timeout: time.Minute}}}}}, ""},
		{"bad tool timeout", MCPConfig{Servers: map[string]MCPServer{"x": {URL: ok.URL, Tools: map[string]MCPTool{"t": {Timeout: -time.Minute}}}}}, "tools.t.timeout"},
		{"task sessions", MCPConfig{Servers: map[string]MCPServer{"x": {URL: ok.URL, Sessions: "task", IdleTimeout: time.Minute, MaxSessions: 8}}}, ""},
		{"shared session", MCPConfig{Servers: map[string]MCPServer{"x": {URL: ok.URL, Sessions: "shared"}}}, ""},
		{"bad sessions", MCPConfig{Servers: map[string]MCPServer{"x": {URL: ok.URL, Sessions: "agent"}}}, "want task or shared"},
		{"bad idle", MCPConfig{Servers: map[string]MCPServer{"x": {URL: ok.URL, IdleTimeout: -time.Second}}}, "idle_timeout"},
		{"bad max", MCPConfig{Servers: map[string]MCPServer{"x": {URL: ok.URL, MaxSessions: -1}}}, "max_sessions"},
		{"tls", MCPConfig{Servers: map[string]MCPServer{"x": {URL: "https://mcp.internal/mcp", TLS: UpstreamTLS{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem"}}}}, ""},
		{"tls over http", MCPConfig{Servers: map[string]MCPServer{"x": {URL: ok.URL, TLS: UpstreamTLS{CAFile: "ca.pem"}}}}, "https url only"},
		{"tls for a command", MCPConfig{Servers: map[string]MCPServer{"x": {Command: []string{"srv"}, TLS: UpstreamTLS{CAFile: "ca.pem"}}}}, "https url only"},
		{"cert without key", MCPConfig{Servers: map[string]MCPServer{"x": {URL: "https://mcp.internal/mcp", TLS: UpstreamTLS{CertFile: "c.pem"}}}}, "both cert_file and key_file"},
		{"origin", MCPConfig{AllowedOrigins: []string{"https://app.example.com"}}, ""},
		{"bad origin", MCPConfig{AllowedOrigins: []string{"app.example.com/x"}}, "not an origin"},
	} {
		wantValid(t, tc.name, tc.mcp.Validate(), tc.want)
	}
	rule := ProxyRule{Method: "GET", Path: "/repos/{owner}", Tool: "t"}
	for _, tc := range []struct {
		name string
		up   ProxyUpstream
		want string
	}{
		{"valid", ProxyUpstream{URL: "https://api.example", Rules: []ProxyRule{rule}}, ""},
		{"no rules", ProxyUpstream{URL: "https://api.example"}, "no rules"},
		{"bad pattern", ProxyUpstream{URL: "https://api.example", Rules: []ProxyRule{{Method: "GET", Path: "/{a}/{a}", Tool: "t"}}}, "invalid method or path"},
		{"no tool", ProxyUpstream{URL: "https://api.example", Rules: []ProxyRule{{Method: "GET", Path: "/x"}}}, "tool are required"},
		{"tls", ProxyUpstream{URL: "https://api.example", Rules: []ProxyRule{rule}, TLS: UpstreamTLS{CAFile: "ca.pem"}}, ""},
		{"tls over http", ProxyUpstream{URL: "http://api.example", Rules: []ProxyRule{rule}, TLS: UpstreamTLS{ServerName: "api"}}, "https url only"},
	} {
		wantValid(t, tc.name, ProxyConfig{Upstreams: map[string]ProxyUpstream{"api": tc.up}}.Validate(), tc.want)
	}
}

// FuzzExpandSecrets: reference parsing never panics, and text without
// references comes back as it went in ($$ aside).
func FuzzExpandSecrets(f *testing.F) {
	for _, s := range []string{"Bearer ${file:/x}", "${env:A}${env:B}", "$$", "${", "${}", "${env:}", "a$b", "}${file:a:b}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := expand(s, func(kind, ref string) (string, error) { return "<" + kind + ">", nil })
		if err == nil && !strings.Contains(s, "$") && got != s {
			t.Errorf("expand(%q) = %q: want it unchanged", s, got)
		}
	})
}

// The example in docs/gateway.md loads and validates.
func TestGatewayExampleLoads(t *testing.T) {
	c := loadYAML(t, `
mcp:
  servers:
    everything:
      url: http://127.0.0.1:3001/mcp
      headers:
        Authorization: "Bearer ${file:/etc/writ/secrets/everything-token}"
      timeout: 30s
      data_class: internal
      tools:
        get-env: {data_class: confidential}
    files:
      command: ["npx", "-y", "@modelcontextprotocol/server-filesystem", "/srv/shared"]
      env:
        API_KEY: "${env:FILES_API_KEY}"
proxy:
  upstreams:
    tracker:
      url: https://tracker.example.com
      headers:
        Authorization: "token ${file:/etc/writ/secrets/tracker-token}"
      timeout: 30s
      max_body_bytes: 1048576
      rules:
        - method: GET
          path: /repos/{owner}/{repo}/issues
          tool: tracker.issues
          operation: read
          resource: https://tracker.example.com/repos/{owner}/{repo}
          data_class: internal
`, nil)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.MCP.Servers["everything"].Timeout != 30*time.Second || len(c.MCP.Servers["files"].Command) != 4 ||
		c.MCP.Servers["everything"].Tools["get-env"].DataClass != "confidential" || len(c.Proxy.Upstreams["tracker"].Rules) != 1 {
		t.Errorf("loaded %+v %+v", c.MCP, c.Proxy)
	}
}
