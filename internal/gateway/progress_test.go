package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/internal/config"
)

// TestProgressRelayed: an agent that asks for progress on a call gets, for
// each of the upstream's notifications, one under its own token that
// counts them, and nothing of the upstream's: not its progress and total
// (huge or not), its message or its _meta, none of which the ledger
// holds. The upstream never sees the agent's token. An agent that does
// not ask gets none.
func TestProgressRelayed(t *testing.T) {
	up := startGoUpstream(t)
	w := startWrit(t, config.MCPConfig{Servers: map[string]config.MCPServer{"up": {URL: up.url}}}, config.ProxyConfig{})
	_, token := w.TaskToken(t, sessionScope)
	for _, version := range []string{"2025-11-25", "2026-07-28"} {
		for _, huge := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/huge=%v", version, huge), func(t *testing.T) {
				progressRelayed(t, up, w.URL+"/mcp/up", token, version, huge)
			})
		}
	}
}

func progressRelayed(t *testing.T, up *goUpstream, endpoint, token, version string, huge bool) {
	var mu sync.Mutex
	var got []*mcp.ProgressNotificationParams
	seen := make(chan struct{}, 8)
	c := mcp.NewClient(&mcp.Implementation{Name: "progress-agent", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			got = append(got, r.Params)
			mu.Unlock()
			seen <- struct{}{}
		}})
	// The upstream goes on after each step once the agent has it: what
	// is relayed does not depend on how fast the machine is.
	up.setProgressed(func(ctx context.Context, step int) error {
		select {
		case <-seen:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return fmt.Errorf("the agent did not get step %d within 10s", step)
		}
	})
	t.Cleanup(func() { up.setProgressed(nil) })
	cs := connectVia(t, c, endpoint, bearer{token: token}, version)
	defer cs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	params := &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{"steps": 3, "huge": huge}}
	params.SetProgressToken("agent-token-1")
	res, err := cs.CallTool(ctx, params)
	if err != nil || res.IsError {
		t.Fatalf("progress: %v %+v", err, res)
	}
	if seen := res.Content[0].(*mcp.TextContent).Text; !strings.HasPrefix(seen, "writ-") {
		t.Errorf("the upstream was given progress token %q: want one of writ's own", seen)
	}
	mu.Lock()
	if len(got) != 3 {
		t.Fatalf("the agent got %d progress notifications, want 3", len(got))
	}
	for i, p := range got {
		if p.ProgressToken != "agent-token-1" || p.Progress != float64(i+1) || p.Total != 0 || p.Message != "" || len(p.Meta) != 0 {
			t.Errorf("notification %d: %+v, want the agent's token, writ's count %d, no total, message or _meta", i, p, i+1)
		}
	}
	got = nil
	mu.Unlock()

	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{"steps": 3}})
	mu.Lock()
	defer mu.Unlock()
	if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "<nil>" || len(got) != 0 {
		t.Errorf("a call without a progress token: %v %+v, %d notifications: want no token upstream and none relayed", err, res, len(got))
	}
}
