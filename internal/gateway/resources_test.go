package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/api"
)

// pathUpstream is an MCP server whose tool names and resource URIs try to
// climb out of the resources a scope names; it notes what it was asked.
type pathUpstream struct {
	url   string
	mu    sync.Mutex
	calls []string
}

func (u *pathUpstream) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.calls)
}

func startPathUpstream(t *testing.T) *pathUpstream {
	t.Helper()
	u := &pathUpstream{}
	note := func(s string) {
		u.mu.Lock()
		u.calls = append(u.calls, s)
		u.mu.Unlock()
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "paths", Version: "1"}, nil)
	for _, name := range []string{"ok", "../resources/file:/private/keys", "a?b"} {
		mcp.AddTool(s, &mcp.Tool{Name: name}, func(ctx context.Context, r *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, any, error) {
			note("tool " + r.Params.Name)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ran"}}}, nil, nil
		})
	}
	s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "file:///{+path}", Name: "files"},
		func(ctx context.Context, r *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			note("read " + r.Params.URI)
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: r.Params.URI, Text: "contents"}}}, nil
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	u.url = ts.URL
	return u
}

// TestMCPResourcesNormalized: a tool name or resource URI that climbs out
// of the scope's resources is refused and never reaches the upstream; a
// name that would add a query is encoded into its resource; a resource
// URI is decided, recorded and forwarded in normal form.
func TestMCPResourcesNormalized(t *testing.T) {
	up := startPathUpstream(t)
	w := upWrit(t, up.url)
	taskID, token := w.TaskToken(t, api.Scope{Tools: []string{"up.*"},
		Resources:  []string{"mcp://up/tools/*", "mcp://up/resources/file:///public/*"},
		Operations: []string{"call", "read"}, DataClass: "internal", Environments: []string{"dev"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := goClient(t, w.URL+"/mcp/up", token, "")

	listed, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a?b", "ok"}, toolNames(listed)); diff != "" {
		t.Errorf("listing (-want +got):\n%s", diff)
	}

	refused := func(what string, err error) {
		t.Helper()
		var we *jsonrpc.Error
		if !errors.As(err, &we) || we.Code != jsonrpc.CodeInvalidParams || !strings.Contains(we.Message, "invalid_request") {
			t.Errorf("%s: %v; want invalid params", what, err)
		}
	}
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "../resources/file:/private/keys"})
	refused("tool ../resources/file:/private/keys", err)
	for _, uri := range []string{"file:///public/../private/keys.txt", "file:///public/%2e%2e/private/keys.txt",
		"file:///public/a%2F..%2F..%2Fprivate", "file:///public/x?f=../../private/keys.txt"} {
		_, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		refused("read "+uri, err)
	}

	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "a?b"}); err != nil || res.IsError {
		t.Errorf("tool a?b: %+v, %v", res, err)
	}
	if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "FILE:///public/%7Enotes"}); err != nil {
		t.Errorf("read FILE:///public/%%7Enotes: %v", err)
	}
	if diff := cmp.Diff([]string{"tool a?b", "read file:///public/~notes"}, up.seen()); diff != "" {
		t.Errorf("what reached the upstream (-want +got):\n%s", diff)
	}

	var decided []string
	for _, e := range w.Trace(t, taskID) {
		switch e.Type {
		case "action.authorized", "action.denied":
			decided = append(decided, e.Type+" "+e.Data.Resource)
		case "tools.hidden":
			for _, h := range e.Data.Hidden {
				decided = append(decided, "hidden "+h.Tool+": "+strings.Join(h.Reasons, "; "))
			}
		}
	}
	want := []string{
		`hidden up.../resources/file:/private/keys: resource "mcp://up/tools/../resources/file:/private/keys" holds a dot segment ".." in its path`,
		"action.authorized mcp://up/tools/a%3Fb",
		"action.authorized mcp://up/resources/file:///public/~notes",
	}
	if diff := cmp.Diff(want, decided); diff != "" {
		t.Errorf("ledger (-want +got):\n%s", diff)
	}
}
