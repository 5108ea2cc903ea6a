package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/gateway"
)

// echoScope lets a task see and call server-everything's echo tool only.
var echoScope = api.Scope{Tools: []string{"everything.echo"}, Resources: []string{"mcp://everything/*"},
	Operations: []string{"call", "read"}, DataClass: "internal", Environments: []string{"dev"}}

// longScope lets a task call server-everything's long-running operation.
var longScope = api.Scope{Tools: []string{"everything.trigger-long-running-operation"}, Resources: []string{"mcp://everything/*"},
	Operations: []string{"call"}, DataClass: "internal", Environments: []string{"dev"}}

// bearer sets an Authorization header on every request.
type bearer struct {
	token string
	extra http.Header
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.token != "" {
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	for k, v := range b.extra {
		r.Header[k] = v
	}
	return clientTransport.RoundTrip(r)
}

// clientTransport is the test agents' transport: it keeps a connection per
// concurrent client, as an agent's HTTP client would.
var clientTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return t
}()

// goClient connects the Go SDK client to endpoint with token, speaking
// protocol version (empty: the SDK's latest).
func goClient(t testing.TB, endpoint, token, version string) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "writ-e2e-go", Version: "1"}, nil)
	cs := connectVia(t, c, endpoint, bearer{token: token}, version)
	t.Cleanup(func() { cs.Close() })
	return cs
}

// connectVia connects c to endpoint over Streamable HTTP, its requests
// sent through rt, speaking protocol version (empty: the SDK's latest).
// Closing the session is the caller's.
func connectVia(t testing.TB, c *mcp.Client, endpoint string, rt bearer, version string) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, MaxRetries: -1,
		HTTPClient: &http.Client{Transport: rt}}, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connecting to %s: %v", endpoint, err)
	}
	return cs
}

func toolNames(res *mcp.ListToolsResult) []string {
	var out []string
	for _, t := range res.Tools {
		out = append(out, t.Name)
	}
	return out
}

func callJSON(t testing.TB, cs *mcp.ClientSession, name string, args any) (*mcp.CallToolResult, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("calling %s: %v", name, err)
	}
	return res, resultJSON(res)
}

// TestEverything runs the official server-everything behind writ, over
// its Streamable HTTP and its stdio transport, and drives the gateway with
// the Go SDK client (both protocol versions) and the TypeScript SDK client.
func TestEverything(t *testing.T) {
	dir := nodeDir(t)
	for _, mode := range []string{"http", "stdio"} {
		t.Run(mode, func(t *testing.T) {
			var sc config.MCPServer
			var direct *mcp.ClientSession
			// The direct client offers what writ's own client offers the
			// upstream (nothing): server-everything lists some tools only
			// to clients that offer roots, sampling or elicitation.
			c := mcp.NewClient(&mcp.Implementation{Name: "direct", Version: "1"}, &mcp.ClientOptions{Capabilities: &mcp.ClientCapabilities{}})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if mode == "http" {
				u := startEverythingHTTP(t)
				sc = config.MCPServer{URL: u, Timeout: 20 * time.Second}
				var err error
				if direct, err = c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: u, MaxRetries: -1}, nil); err != nil {
					t.Fatal(err)
				}
			} else {
				sc = config.MCPServer{Command: []string{"node", everythingMain(dir), "stdio"}, Timeout: 20 * time.Second}
				var err error
				if direct, err = c.Connect(ctx, &mcp.CommandTransport{Command: exec.Command("node", everythingMain(dir), "stdio")}, nil); err != nil {
					t.Fatal(err)
				}
			}
			defer direct.Close()
			w := startWrit(t, config.MCPConfig{Servers: map[string]config.MCPServer{"everything": sc}}, config.ProxyConfig{})
			endpoint := w.URL + "/mcp/everything"

			all, err := direct.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(toolNames(all), "echo") || !slices.Contains(toolNames(all), "get-sum") {
				t.Fatalf("server-everything lists %v: want echo and get-sum", toolNames(all))
			}
			_, want := callJSON(t, direct, "echo", map[string]any{"message": "hello through writ"})

			for _, version := range []string{"2026-07-28", "2025-11-25"} {
				t.Run("go-"+version, func(t *testing.T) {
					taskID, token := w.TaskToken(t, echoScope)
					cs := goClient(t, endpoint, token, version)
					if got := cs.InitializeResult().ProtocolVersion; got != version {
						t.Errorf("negotiated %s, want %s", got, version)
					}
					listed, err := cs.ListTools(ctx, nil)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff([]string{"echo"}, toolNames(listed)); diff != "" {
						t.Errorf("listing through writ (-want +got):\n%s", diff)
					}
					res, got := callJSON(t, cs, "echo", map[string]any{"message": "hello through writ"})
					if res.IsError || string(got) != string(want) {
						t.Errorf("echo through writ:\n got %s\nwant %s", got, want)
					}
					res, _ = callJSON(t, cs, "get-sum", map[string]any{"a": 1, "b": 2})
					checkDenied(t, res)

					evs := w.Trace(t, taskID)
					checkLedger(t, evs, len(all.Tools)-1, res.Meta["writ/decision_id"].(string))
				})
			}

			t.Run("typescript", func(t *testing.T) {
				taskID, token := w.TaskToken(t, echoScope)
				var got struct {
					Tools []string `json:"tools"`
					Calls []struct {
						Tool   string          `json:"tool"`
						Result json.RawMessage `json:"result"`
						Error  string          `json:"error"`
					} `json:"calls"`
					Error           string `json:"error"`
					ProtocolVersion string `json:"protocolVersion"`
					SessionID       string `json:"sessionId"`
				}
				out := runNode(t, dir, &got, "client.mjs", endpoint, token,
					"echo", `{"message":"hello through writ"}`, "get-sum", `{"a":1,"b":2}`)
				if got.Error != "" || len(got.Calls) != 2 {
					t.Fatalf("TypeScript client said %s", out)
				}
				if got.ProtocolVersion != "2025-11-25" || got.SessionID == "" {
					t.Errorf("TypeScript client spoke %q with session %q: want a 2025-11-25 session", got.ProtocolVersion, got.SessionID)
				}
				if diff := cmp.Diff([]string{"echo"}, got.Tools); diff != "" {
					t.Errorf("TypeScript listing (-want +got):\n%s", diff)
				}
				var echo, denied mcp.CallToolResult
				if err := json.Unmarshal(got.Calls[0].Result, &echo); err != nil {
					t.Fatalf("echo: %s %s", got.Calls[0].Result, got.Calls[0].Error)
				}
				if b := resultJSON(&echo); string(b) != string(want) {
					t.Errorf("TypeScript echo through writ:\n got %s\nwant %s", b, want)
				}
				if err := json.Unmarshal(got.Calls[1].Result, &denied); err != nil {
					t.Fatalf("get-sum: %s %s", got.Calls[1].Result, got.Calls[1].Error)
				}
				checkDenied(t, &denied)
				checkLedger(t, w.Trace(t, taskID), len(all.Tools)-1, denied.Meta["writ/decision_id"].(string))
			})

			t.Run("revoked-mid-call", func(t *testing.T) {
				revokedMidCall(t, w, endpoint)
			})

			t.Run("typescript-progress", func(t *testing.T) {
				_, token := w.TaskToken(t, longScope)
				var got struct {
					Calls []struct {
						Result   *mcp.CallToolResult `json:"result"`
						Error    string              `json:"error"`
						Progress []struct {
							Progress float64 `json:"progress"`
							Total    float64 `json:"total"`
						} `json:"progress"`
					} `json:"calls"`
					Error string `json:"error"`
				}
				out := runNode(t, dir, &got, "client.mjs", endpoint, token,
					"trigger-long-running-operation", `{"duration":0.3,"steps":3}`)
				if got.Error != "" || len(got.Calls) != 1 {
					t.Fatalf("TypeScript client said %s", out)
				}
				c := got.Calls[0]
				if c.Result == nil || c.Result.IsError {
					t.Fatalf("the long-running operation through writ: %s", out)
				}
				// writ relays its count of the upstream's notifications,
				// not the upstream's numbers.
				if len(c.Progress) != 3 || c.Progress[2].Progress != 3 || c.Progress[2].Total != 0 {
					t.Errorf("progress the TypeScript client saw: %+v, want steps 1 to 3, without a total", c.Progress)
				}
			})
		})
	}
}

// resultJSON is a result without the protocol's own _meta keys, which
// depend on the protocol version spoken.
func resultJSON(res *mcp.CallToolResult) []byte {
	r := *res
	r.Meta = nil
	for k, v := range res.Meta {
		if !strings.HasPrefix(k, "io.modelcontextprotocol/") {
			if r.Meta == nil {
				r.Meta = mcp.Meta{}
			}
			r.Meta[k] = v
		}
	}
	b, _ := json.Marshal(&r)
	return b
}

// checkDenied checks a refused tool call: an error result naming the
// decision, in its text and its _meta.
func checkDenied(t testing.TB, res *mcp.CallToolResult) {
	t.Helper()
	id, _ := res.Meta["writ/decision_id"].(string)
	if !res.IsError || id == "" || len(res.Content) != 1 {
		t.Fatalf("forbidden call answered %+v: want an error result with a decision ID", res)
	}
	text := res.Content[0].(*mcp.TextContent).Text
	if !strings.Contains(text, id) || !strings.Contains(text, "writ denied everything.get-sum") {
		t.Errorf("denial text %q: want the tool and decision %s", text, id)
	}
}

// checkLedger checks what the task's ledger holds after one listing, one
// allowed echo and one denied get-sum.
func checkLedger(t testing.TB, evs []event, hidden int, deniedID string) {
	t.Helper()
	h := ofType(evs, "tools.hidden")
	if len(h) != 1 || len(h[0].Data.Hidden) != hidden {
		t.Fatalf("tools.hidden events %+v: want one hiding %d tools", h, hidden)
	}
	for _, x := range h[0].Data.Hidden {
		if x.DecisionID == "" || len(x.Reasons) == 0 || !strings.HasPrefix(x.Tool, "everything.") {
			t.Errorf("hidden entry %+v: want tool, decision and reasons", x)
		}
	}
	auth := ofType(evs, "action.authorized")
	done := ofType(evs, "action.completed")
	denied := ofType(evs, "action.denied")
	if len(auth) != 1 || auth[0].Data.Tool != "everything.echo" || auth[0].Data.Resource != "mcp://everything/tools/echo" {
		t.Fatalf("action.authorized %+v: want one for everything.echo", auth)
	}
	if len(done) != 1 || done[0].Data.ActionID != auth[0].Data.ActionID || done[0].Data.Status != "ok" || !done[0].Data.Recorded {
		t.Errorf("action.completed %+v: want the echo's result, ok, recorded", done)
	}
	if len(denied) != 1 || denied[0].DecisionID != deniedID || denied[0].Data.Tool != "everything.get-sum" {
		t.Errorf("action.denied %+v: want get-sum's, decision %s", denied, deniedID)
	}
}

// revokedMidCall revokes a task while its call of server-everything's
// long-running operation runs (it has reported progress): the agent gets
// an error saying so, not the result, and the ledger records the call as
// cancelled.
func revokedMidCall(t *testing.T, w *writ, endpoint string) {
	taskID, token := w.TaskToken(t, longScope)
	moving := make(chan struct{}, 1)
	c := mcp.NewClient(&mcp.Implementation{Name: "revoked-agent", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
			select {
			case moving <- struct{}{}:
			default:
			}
		}})
	cs := connectVia(t, c, endpoint, bearer{token: token}, "")
	defer cs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		// Ten minutes of work, unless cancelled.
		p := &mcp.CallToolParams{Name: "trigger-long-running-operation", Arguments: map[string]any{"duration": 600, "steps": 600}}
		p.SetProgressToken("long")
		res, err := cs.CallTool(ctx, p)
		if err == nil {
			err = fmt.Errorf("the agent got the result %s", resultText(res))
		}
		errc <- err
	}()
	select {
	case <-moving:
	case err := <-errc:
		t.Fatalf("the long-running operation ended before any progress: %v", err)
	case <-ctx.Done():
		t.Fatal("no progress from the long-running operation")
	}
	if st := w.Do(t, "POST", "/v1/tasks/"+taskID+"/revoke", w.Tok["alice"], map[string]string{"reason": "stop"}, nil); st != http.StatusOK {
		t.Fatalf("revoke: %d", st)
	}
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		t.Fatal("the call in flight did not end after the revocation")
	}
	var we *jsonrpc.Error
	if !errors.As(err, &we) || we.Code != gateway.CodeDenied || !strings.Contains(we.Message, "task "+taskID+" was revoked") {
		t.Errorf("the agent got %v: want code %d saying task %s was revoked", err, gateway.CodeDenied, taskID)
	}
	done := ofType(w.Trace(t, taskID), "action.completed")
	if len(done) != 1 || done[0].Data.Status != "cancelled" || done[0].Data.Reason != "task_revoked" {
		t.Errorf("action.completed %+v: want the call cancelled, reason task_revoked", done)
	}
}
