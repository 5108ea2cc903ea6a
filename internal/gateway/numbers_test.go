package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/internal/task"
)

// TestInexactNumberArguments: a tool call whose arguments hold a number
// canonical form would change is refused as invalid params naming where,
// never forwarded nor authorized, and the session goes on.
func TestInexactNumberArguments(t *testing.T) {
	w, taskID, cs := upSession(t, "2025-11-25")
	ctx := context.Background()
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: json.RawMessage(`{"message":"pay","amount":12345678901234567891}`)})
	var we *jsonrpc.Error
	if !errors.As(err, &we) || we.Code != jsonrpc.CodeInvalidParams || !strings.Contains(we.Message, task.CodeInexactNumber) ||
		!strings.Contains(we.Message, "arguments.amount") {
		t.Fatalf("inexact number: %v; want invalid params naming arguments.amount", err)
	}
	if auth := ofType(w.Trace(t, taskID), "action.authorized"); len(auth) != 0 {
		t.Errorf("a refused call was authorized: %+v", auth)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: json.RawMessage(`{"message":"still here"}`)})
	if err != nil || res.IsError {
		t.Fatalf("a call after the refusal: %v %+v", err, res)
	}
}
