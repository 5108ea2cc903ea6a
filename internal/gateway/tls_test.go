package gateway_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/gateway"
	"github.com/writhq/writ/internal/testpki"
)

// TestUpstreamTLS: an upstream behind a private CA that requires a client
// certificate is reached with the configured roots and certificate (and
// server name); without them the call fails cleanly.
func TestUpstreamTLS(t *testing.T) {
	pki := testpki.New(t)
	s := newGoServer(newGoUpstream())
	ts := pki.Server(t, mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	full := config.UpstreamTLS{CAFile: pki.CAFile, CertFile: pki.CertFile, KeyFile: pki.KeyFile}
	named := full
	named.ServerName = "upstream.internal"
	w := startWrit(t, config.MCPConfig{Servers: map[string]config.MCPServer{
		"mtls":      {URL: ts.URL, TLS: full},
		"named":     {URL: ts.URL, TLS: named},
		"nocert":    {URL: ts.URL, TLS: config.UpstreamTLS{CAFile: pki.CAFile}},
		"untrusted": {URL: ts.URL},
	}}, config.ProxyConfig{})
	scope := api.Scope{Tools: []string{"*.echo"}, Resources: []string{"mcp://*"}, Operations: []string{"call"},
		DataClass: "internal", Environments: []string{"dev"}}
	_, token := w.TaskToken(t, scope)

	for _, name := range []string{"mtls", "named"} {
		res, err := callErr(t, goClient(t, w.URL+"/mcp/"+name, token, ""), "echo", map[string]any{"message": "over mTLS"})
		if err != nil || res.IsError || !strings.Contains(resultText(res), "over mTLS") {
			t.Errorf("%s: echo over mutual TLS: %v %+v", name, err, res)
		}
	}
	for name, why := range map[string]string{"nocert": "certificate", "untrusted": "certificate"} {
		_, err := callErr(t, goClient(t, w.URL+"/mcp/"+name, token, ""), "echo", map[string]any{"message": "x"})
		var we *jsonrpc.Error
		if !errors.As(err, &we) || we.Code != gateway.CodeUnavailable || !strings.Contains(we.Message, why) {
			t.Errorf("%s: %v, want code %d naming the %s", name, err, gateway.CodeUnavailable, why)
		}
	}
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}
