package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/gateway"
)

// TestRevokeCancelsCallInFlight: a task revoked (or whose parent is
// revoked) while a call of it waits on the upstream has the call
// cancelled: the upstream is told, the agent gets an error saying why
// instead of the result the upstream gives later, and the ledger records
// the call as cancelled, after the revocation.
func TestRevokeCancelsCallInFlight(t *testing.T) {
	for _, tc := range []struct {
		name, server string
		child        bool
	}{
		{"task session", "up", false},
		{"shared session", "shared", false},
		{"parent revoked", "up", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up, w := sessionsWrit(t)
			revoked, token := w.TaskToken(t, sessionScope)
			taskID := revoked
			if tc.child {
				taskID, token = w.ChildTaskToken(t, revoked, token, sessionScope)
			}
			cs := goClient(t, w.URL+"/mcp/"+tc.server, token, "")

			errc := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "block", Arguments: map[string]any{}})
				if err == nil {
					err = errors.New("the agent got the result " + resultText(res))
				}
				errc <- err
			}()
			up.awaitStarted(t)
			if st := w.Do(t, "POST", "/v1/tasks/"+revoked+"/revoke", w.Tok["alice"], map[string]string{"reason": "stop"}, nil); st != http.StatusOK {
				t.Fatalf("revoke: %d", st)
			}
			var err error
			select {
			case err = <-errc:
			case <-time.After(30 * time.Second):
				t.Fatal("the call in flight did not end within 30s of the revocation")
			}
			var we *jsonrpc.Error
			if !errors.As(err, &we) || we.Code != gateway.CodeDenied || !strings.Contains(we.Message, "task "+taskID+" was revoked") ||
				!strings.Contains(we.Message, "withheld") {
				t.Errorf("the agent got %v: want code %d saying task %s was revoked and the result is withheld", err, gateway.CodeDenied, taskID)
			}
			// The upstream is told; releasing the call afterwards changes
			// nothing (released first, it would answer instead).
			up.awaitCancelled(t)
			close(up.release)

			evs := w.Trace(t, taskID)
			auth, done := ofType(evs, "action.authorized"), ofType(evs, "action.completed")
			if len(auth) != 1 || len(done) != 1 || done[0].Data.ActionID != auth[0].Data.ActionID ||
				done[0].Data.Status != "cancelled" || done[0].Data.Reason != "task_revoked" {
				t.Fatalf("ledger: authorized %+v, completed %+v: want the call cancelled, reason task_revoked", auth, done)
			}
			last := ""
			for _, e := range evs {
				if e.Type == "task.revoked" || e.Type == "action.completed" {
					last = e.Type
				}
			}
			if last != "action.completed" {
				t.Errorf("the call's outcome is not recorded after the revocation: %+v", evs)
			}
		})
	}
}

// TestUpstreamErrorData: the data member of an upstream's JSON-RPC error
// reaches the agent exactly as the ledger records it (with the output's
// redaction applied to the record), and a listing's error, which is not
// recorded, reaches the agent without it.
func TestUpstreamErrorData(t *testing.T) {
	up := startGoUpstream(t)
	pol := redactPolicy(t)
	w := startWrit(t, config.MCPConfig{Servers: map[string]config.MCPServer{"up": {URL: up.url}}}, config.ProxyConfig{},
		func(c *config.Config) { c.Policy.Dir, c.Policy.Engine = pol, "rego" })
	taskID, token := w.TaskToken(t, sessionScope)
	cs := goClient(t, w.URL+"/mcp/up", token, "")
	_, err := callErr(t, cs, "fail", map[string]any{"data": map[string]any{"hint": "try later", "secret": "up-secret-9"}})
	var we *jsonrpc.Error
	if !errors.As(err, &we) || we.Code != -32042 || we.Message != "the upstream refused" {
		t.Fatalf("fail: %v, want the upstream's error", err)
	}
	var agentData map[string]string
	if err := jsonUnmarshal(we.Data, &agentData); err != nil || agentData["hint"] != "try later" || agentData["secret"] != "up-secret-9" {
		t.Errorf("the agent got data %s, want the upstream's", we.Data)
	}
	done := ofType(w.Trace(t, taskID), "action.completed")
	if len(done) != 1 || done[0].Data.Status != "error" || !done[0].Data.Recorded {
		t.Fatalf("action.completed %+v: want one error, recorded", done)
	}
	outputs := w.Bodies(t, "output")
	if len(outputs) != 1 {
		t.Fatalf("%d output bodies, want 1", len(outputs))
	}
	for _, b := range outputs {
		var out struct {
			Error struct {
				Code    int64             `json:"code"`
				Message string            `json:"message"`
				Data    map[string]string `json:"data"`
			} `json:"error"`
		}
		if err := jsonUnmarshal(b, &out); err != nil || out.Error.Code != -32042 || out.Error.Message != "the upstream refused" ||
			out.Error.Data["hint"] != "try later" || out.Error.Data["secret"] != "[redacted]" {
			t.Errorf("recorded output %s: want the error with its data, the secret redacted", b)
		}
	}
}
