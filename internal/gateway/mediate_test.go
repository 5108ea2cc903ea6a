package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/gateway"
)

// TestResourcesPromptsAndTrace: resource reads and prompt gets are decided
// and recorded as actions of their own kind; the traceparent of a request
// is on its events.
func TestResourcesPromptsAndTrace(t *testing.T) {
	up := startGoUpstream(t)
	w := upWrit(t, up.url)
	taskID, token := w.TaskToken(t, upScope)
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	c := mcp.NewClient(&mcp.Implementation{Name: "trace", Version: "1"}, nil)
	cs := connectVia(t, c, w.URL+"/mcp/up", bearer{token: token, extra: http.Header{"Traceparent": {traceparent}}}, "")
	defer cs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	listed, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"echo", "slow"}, toolNames(listed)); diff != "" {
		t.Errorf("listing (-want +got):\n%s", diff)
	}
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///notes/q3.txt"})
	if err != nil || len(rr.Contents) != 1 || rr.Contents[0].Text != "Q3 notes" {
		t.Fatalf("read in scope: %v %+v", err, rr)
	}
	_, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///private/keys.txt"})
	var we *jsonrpc.Error
	if !errors.As(err, &we) || we.Code != gateway.CodeDenied || !strings.Contains(we.Message, "decision ") {
		t.Errorf("read out of scope: %v, want a denial naming its decision", err)
	}
	gp, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "greet", Arguments: map[string]string{"who": "auditor"}})
	if err != nil || len(gp.Messages) != 1 || gp.Messages[0].Content.(*mcp.TextContent).Text != "hello auditor" {
		t.Fatalf("prompt: %v %+v", err, gp)
	}

	evs := w.Trace(t, taskID)
	var kinds []string
	for _, e := range evs {
		switch e.Type {
		case "action.authorized", "action.denied", "action.completed", "tools.hidden":
			kinds = append(kinds, e.Type+" "+e.Data.Tool+" "+e.Data.Resource)
			if e.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Errorf("%s has trace_id %q, want the request's", e.Type, e.TraceID)
			}
		}
	}
	want := []string{
		"tools.hidden  ",
		"action.authorized up.resources mcp://up/resources/file:///notes/q3.txt",
		"action.completed up.resources ",
		"action.denied up.resources mcp://up/resources/file:///private/keys.txt",
		"action.authorized up.prompts mcp://up/prompts/greet",
		"action.completed up.prompts ",
	}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("ledger (-want +got):\n%s", diff)
	}
}

// TestTraceparentInMeta: a traceparent in a request's _meta (here over the
// stateless protocol) puts its trace ID on the request's events.
func TestTraceparentInMeta(t *testing.T) {
	w, taskID, cs := upSession(t, "2026-07-28")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "traced"},
		Meta: mcp.Meta{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}})
	if err != nil || res.IsError {
		t.Fatalf("echo: %v %+v", err, res)
	}
	for _, e := range w.Trace(t, taskID) {
		if (e.Type == "action.authorized" || e.Type == "action.completed") && e.TraceID != "0af7651916cd43dd8448eb211c80319c" {
			t.Errorf("%s has trace_id %q, want the one from _meta", e.Type, e.TraceID)
		}
	}
}

// TestInstructionsRelayed: once writ is connected to the upstream, agents
// get the upstream's instructions in their handshake.
func TestInstructionsRelayed(t *testing.T) {
	up := startGoUpstream(t)
	w := upWrit(t, up.url)
	_, token := w.TaskToken(t, upScope)
	first := goClient(t, w.URL+"/mcp/up", token, "2025-11-25")
	if _, err := callErr(t, first, "echo", map[string]any{"message": "connect"}); err != nil {
		t.Fatal(err)
	}
	for _, version := range []string{"2025-11-25", "2026-07-28"} {
		cs := goClient(t, w.URL+"/mcp/up", token, version)
		if got := cs.InitializeResult().Instructions; got != upInstructions {
			t.Errorf("%s: instructions %q, want the upstream's %q", version, got, upInstructions)
		}
	}
}

// TestShutdownWithOpenSessions: agents' open sessions (and their standing
// GET streams) do not hold up a graceful shutdown.
func TestShutdownWithOpenSessions(t *testing.T) {
	w, _, cs := upSession(t, "2025-11-25")
	if _, err := callErr(t, cs, "echo", map[string]any{"message": "still connected"}); err != nil {
		t.Fatal(err)
	}
	// Stop fails the test when the server cannot finish its shutdown
	// (its 30s grace runs out while a stream stays open).
	w.Stop()
}

// TestStepUpThroughGateway: a read outside the task's resources asks for a
// step-up approval; once an approver grants it, the same read goes through,
// once.
func TestStepUpThroughGateway(t *testing.T) {
	w, _, cs := upSession(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	read := func() (*mcp.ReadResourceResult, error) {
		return cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///private/keys.txt"})
	}
	_, err := read()
	var we *jsonrpc.Error
	if !errors.As(err, &we) || we.Code != gateway.CodeDenied {
		t.Fatalf("read out of scope: %v, want a denial", err)
	}
	var data struct {
		DecisionID string `json:"decision_id"`
		ApprovalID string `json:"approval_id"`
	}
	if err := json.Unmarshal(we.Data, &data); err != nil || data.ApprovalID == "" || data.DecisionID == "" {
		t.Fatalf("denial data %s: want a decision and a step-up approval", we.Data)
	}
	if st := w.Do(t, "POST", "/v1/approvals/"+data.ApprovalID, w.Tok["bob"], api.Decide{Decision: "approve", Reason: "one read"}, nil); st != http.StatusOK {
		t.Fatalf("approve: %d", st)
	}
	rr, err := read()
	if err != nil || len(rr.Contents) != 1 || rr.Contents[0].Text != "private" {
		t.Fatalf("read after approval: %v %+v", err, rr)
	}
	if _, err := read(); !errors.As(err, &we) || we.Code != gateway.CodeDenied {
		t.Errorf("second read on one approval: %v, want a denial", err)
	}
}
