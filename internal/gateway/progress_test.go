package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/internal/config"
)

// TestProgressRelayed: an agent that asks for progress on a call gets the
// upstream's notifications under its own token, with progress and total
// but not the upstream's message; the upstream never sees the agent's
// token. An agent that does not ask gets none.
func TestProgressRelayed(t *testing.T) {
	up := startGoUpstream(t)
	w := startWrit(t, config.MCPConfig{Servers: map[string]config.MCPServer{"up": {URL: up.url}}}, config.ProxyConfig{})
	_, token := w.TaskToken(t, sessionScope)
	for _, version := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(version, func(t *testing.T) {
			var mu sync.Mutex
			var got []*mcp.ProgressNotificationParams
			c := mcp.NewClient(&mcp.Implementation{Name: "progress-agent", Version: "1"}, &mcp.ClientOptions{
				ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
					mu.Lock()
					got = append(got, r.Params)
					mu.Unlock()
				}})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: w.URL + "/mcp/up", MaxRetries: -1,
				HTTPClient: &http.Client{Transport: bearer{token: token}}}, &mcp.ClientSessionOptions{ProtocolVersion: version})
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()

			params := &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{"steps": 3}}
			params.SetProgressToken("agent-token-1")
			res, err := cs.CallTool(ctx, params)
			if err != nil || res.IsError {
				t.Fatalf("progress: %v %+v", err, res)
			}
			seen := res.Content[0].(*mcp.TextContent).Text
			if !strings.HasPrefix(seen, "writ-") {
				t.Errorf("the upstream was given progress token %q: want one of writ's own", seen)
			}
			// Notifications are handled as they arrive, up to the result.
			deadline := time.Now().Add(10 * time.Second)
			for {
				mu.Lock()
				n := len(got)
				mu.Unlock()
				if n >= 3 || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 3 {
				t.Fatalf("the agent got %d progress notifications, want 3", len(got))
			}
			for i, p := range got {
				if p.ProgressToken != "agent-token-1" || p.Progress != float64(i+1) || p.Total != 3 || p.Message != "" {
					t.Errorf("notification %d: %+v, want the agent's token, progress %d of 3, no message", i, p, i+1)
				}
			}

			got = nil
			mu.Unlock()
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{"steps": 3}})
			mu.Lock()
			if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "<nil>" || len(got) != 0 {
				t.Errorf("a call without a progress token: %v %+v, %d notifications: want no token upstream and none relayed", err, res, len(got))
			}
		})
	}
}
