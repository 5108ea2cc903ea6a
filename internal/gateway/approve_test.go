package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/testkit"
)

// stepUpScope lets a task call up.echo, whose resource lies outside it:
// every call of echo asks for a step-up.
var stepUpScope = api.Scope{Tools: []string{"up.echo"}, Resources: []string{"mcp://up/tools/slow"},
	Operations: []string{"call"}, DataClass: "internal", Environments: []string{"dev"}}

const consoleURL = "https://writ.example.test"

var errNotYet = errors.New("not yet")

// approvingClient is an agent whose user is asked, by URL-mode
// elicitation, to open the approval page; answer says what the user does
// with it, and decide (when set) what the approver then decides.
type approvingClient struct {
	w      *writ
	answer string // accept, decline or cancel
	decide string // approve, deny or "" (no decision)

	mu        sync.Mutex
	asked     []*mcp.ElicitParams
	completed []string
}

func (a *approvingClient) connect(t *testing.T, token, version string, urlMode bool) *mcp.ClientSession {
	t.Helper()
	opts := &mcp.ClientOptions{
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			a.mu.Lock()
			a.asked = append(a.asked, req.Params)
			a.mu.Unlock()
			if a.answer == "accept" && a.decide != "" {
				id := strings.TrimPrefix(req.Params.URL, consoleURL+"/ui/approvals/")
				// The approver decides while the call waits.
				go a.w.Do(t, "POST", "/v1/approvals/"+id, a.w.Tok["bob"], api.Decide{Decision: a.decide, Reason: "from the test"}, nil)
			}
			return &mcp.ElicitResult{Action: a.answer}, nil
		},
		ElicitationCompleteHandler: func(_ context.Context, req *mcp.ElicitationCompleteNotificationRequest) {
			a.mu.Lock()
			a.completed = append(a.completed, req.Params.ElicitationID)
			a.mu.Unlock()
		},
	}
	if urlMode {
		opts.Capabilities = &mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapabilities{URL: &mcp.URLElicitationCapabilities{}}}
	} else {
		opts.Capabilities = &mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapabilities{Form: &mcp.FormElicitationCapabilities{}}}
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "writ-e2e-approving", Version: "1"}, opts)
	cs := connectVia(t, c, a.w.URL+"/mcp/up", bearer{token: token}, version)
	t.Cleanup(func() { cs.Close() })
	return cs
}

func (a *approvingClient) elicitations() []*mcp.ElicitParams {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*mcp.ElicitParams(nil), a.asked...)
}

// TestApprovalWhereTheAgentRuns: a tools/call that needs a step-up asks
// the agent's user, by URL-mode elicitation pointing to the console's page
// for exactly that approval, and completes once it is approved; it fails
// with the decision ID when denied; a client that declines, or supports
// no URL-mode elicitation, gets the step-up error as before. Over a
// 2025-11-25 session (elicitation/create during the call) and the
// 2026-07-28 protocol (an input-required result, retried).
func TestApprovalWhereTheAgentRuns(t *testing.T) {
	up := startGoUpstream(t)
	w := upWrit(t, up.url, func(c *config.Config) { c.Console.PublicURL = consoleURL })
	for _, version := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(version, func(t *testing.T) {
			call := func(cs *mcp.ClientSession) *mcp.CallToolResult {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hi " + version}})
				if err != nil {
					t.Fatalf("call: %v", err)
				}
				return res
			}

			// Approved: the call runs, once.
			taskID, token := w.TaskToken(t, stepUpScope)
			a := &approvingClient{w: w, answer: "accept", decide: "approve"}
			cs := a.connect(t, token, version, true)
			res := call(cs)
			if res.IsError || !strings.Contains(string(resultJSON(res)), "hi "+version) {
				t.Fatalf("approved call: %s", resultJSON(res))
			}
			asked := a.elicitations()
			if len(asked) != 1 || asked[0].Mode != "url" || !strings.HasPrefix(asked[0].URL, consoleURL+"/ui/approvals/apr_") ||
				asked[0].ElicitationID != strings.TrimPrefix(asked[0].URL, consoleURL+"/ui/approvals/") ||
				!strings.Contains(asked[0].Message, "up.echo needs step-up approval") {
				t.Fatalf("elicitations %+v", asked)
			}
			evs := w.Trace(t, taskID)
			if n := len(ofType(evs, "action.authorized")); n != 1 {
				t.Errorf("%d calls authorized, want 1", n)
			}
			if version == "2025-11-25" {
				if err := testkit.Poll(10*time.Second, func() error {
					a.mu.Lock()
					defer a.mu.Unlock()
					if len(a.completed) != 1 || a.completed[0] != asked[0].ElicitationID {
						return errNotYet
					}
					return nil
				}); err != nil {
					t.Errorf("notifications/elicitation/complete: %v", err)
				}
			}

			// Denied: the call fails, with the decision ID, and does not run.
			_, token = w.TaskToken(t, stepUpScope)
			a = &approvingClient{w: w, answer: "accept", decide: "deny"}
			res = call(a.connect(t, token, version, true))
			meta := res.Meta
			if !res.IsError || !strings.Contains(string(resultJSON(res)), "was denied; the call did not run (decision dec_") ||
				meta["writ/decision_id"] == "" || meta["writ/approval"] != "denied" {
				t.Fatalf("denied call: %s %v", resultJSON(res), meta)
			}

			// Declined by the user: the step-up error, as before.
			_, token = w.TaskToken(t, stepUpScope)
			a = &approvingClient{w: w, answer: "decline"}
			res = call(a.connect(t, token, version, true))
			if !res.IsError || !strings.Contains(string(resultJSON(res)), "needs step-up approval") {
				t.Fatalf("declined: %s", resultJSON(res))
			}

			// A client without URL-mode elicitation: the step-up error; it
			// is never asked.
			_, token = w.TaskToken(t, stepUpScope)
			a = &approvingClient{w: w, answer: "accept", decide: "approve"}
			res = call(a.connect(t, token, version, false))
			if !res.IsError || !strings.Contains(string(resultJSON(res)), "needs step-up approval") || len(a.elicitations()) != 0 {
				t.Fatalf("form-only client: %s, asked %d", resultJSON(res), len(a.elicitations()))
			}
		})
	}
}

// TestApprovalWhereTheAgentRunsNeedsAPage: without a console URL to send
// the user to, a step-up is the error it always was.
func TestApprovalWhereTheAgentRunsNeedsAPage(t *testing.T) {
	up := startGoUpstream(t)
	w := upWrit(t, up.url)
	_, token := w.TaskToken(t, stepUpScope)
	a := &approvingClient{w: w, answer: "accept", decide: "approve"}
	cs := a.connect(t, token, "2025-11-25", true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "x"}})
	if err != nil || !res.IsError || !strings.Contains(string(resultJSON(res)), "needs step-up approval") || len(a.elicitations()) != 0 {
		t.Fatalf("%v %s", err, resultJSON(res))
	}
}

// TestApprovalWhereTheAgentRunsTypeScript: the official TypeScript SDK
// client, declaring URL-mode elicitation over a 2025-11-25 session, is
// sent to the approval page; its call completes once approved, and fails
// with the decision ID once denied.
func TestApprovalWhereTheAgentRunsTypeScript(t *testing.T) {
	dir := nodeDir(t)
	up := startGoUpstream(t)
	w := upWrit(t, up.url, func(c *config.Config) { c.Console.PublicURL = consoleURL })
	for _, tc := range []struct{ decision, want string }{
		{"approve", "hi from typescript"},
		{"deny", "was denied; the call did not run (decision dec_"},
	} {
		t.Run(tc.decision, func(t *testing.T) {
			taskID, token := w.TaskToken(t, stepUpScope)
			var got struct {
				Elicitations []struct {
					Mode, URL, Message string
					ElicitationID      string `json:"elicitationId"`
				} `json:"elicitations"`
				Completed       []string        `json:"completed"`
				Result          json.RawMessage `json:"result"`
				Error           string          `json:"error"`
				ProtocolVersion string          `json:"protocolVersion"`
			}
			out := runNode(t, dir, &got, "approve.mjs", w.URL+"/mcp/up", token, w.URL, w.Tok["bob"], tc.decision,
				"echo", `{"message":"hi from typescript"}`)
			if got.Error != "" || len(got.Elicitations) != 1 {
				t.Fatalf("TypeScript client said %s", out)
			}
			e := got.Elicitations[0]
			if got.ProtocolVersion != "2025-11-25" || e.Mode != "url" || e.URL != consoleURL+"/ui/approvals/"+e.ElicitationID ||
				!strings.HasPrefix(e.ElicitationID, "apr_") {
				t.Fatalf("elicitation %+v over %s", e, got.ProtocolVersion)
			}
			if !strings.Contains(string(got.Result), tc.want) || len(got.Completed) != 1 || got.Completed[0] != e.ElicitationID {
				t.Fatalf("result %s, completed %q", got.Result, got.Completed)
			}
			authorized := len(ofType(w.Trace(t, taskID), "action.authorized"))
			if want := map[string]int{"approve": 1, "deny": 0}[tc.decision]; authorized != want {
				t.Errorf("%d calls authorized, want %d", authorized, want)
			}
		})
	}
}
