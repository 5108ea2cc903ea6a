package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/gateway"
	"github.com/writhq/writ/internal/gateway/gatewaytest"
)

// upScope lets a task use the Go upstream "up": echo, slow, the notes
// resources and the prompts; hidden-tool and other resources stay out.
var upScope = api.Scope{Tools: []string{"up.echo", "up.slow", "up.resources", "up.prompts"},
	Resources:  []string{"mcp://up/tools/*", "mcp://up/resources/file:///notes/*", "mcp://up/prompts/*"},
	Operations: []string{"call", "read", "get"}, DataClass: "internal", Environments: []string{"dev"}}

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

type rawAnswer struct {
	status int
	header http.Header
	body   string
}

// rawPost sends one MCP POST as a client would, with token when set.
func rawPost(t testing.TB, url, token, body string, header map[string]string) rawAnswer {
	t.Helper()
	h := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json, text/event-stream"}}
	for k, v := range header {
		h.Set(k, v)
	}
	a := gatewaytest.Send(t, "POST", url, token, h, strings.NewReader(body))
	return rawAnswer{a.Status, a.Header, a.Body}
}

func upWrit(t testing.TB, up string, opts ...func(*config.Config)) *writ {
	return startWrit(t, config.MCPConfig{Servers: map[string]config.MCPServer{"up": {URL: up, Timeout: 5 * time.Second}}}, config.ProxyConfig{}, opts...)
}

// sessionsWrit starts the Go upstream behind a writ that serves it twice:
// as "up", with an upstream session per task, and as "shared", with one
// session for every task.
func sessionsWrit(t testing.TB) (*goUpstream, *writ) {
	t.Helper()
	up := startGoUpstream(t)
	return up, startWrit(t, config.MCPConfig{Servers: map[string]config.MCPServer{
		"up":     {URL: up.url},
		"shared": {URL: up.url, Sessions: config.SessionsShared},
	}}, config.ProxyConfig{})
}

// upSession starts the Go upstream behind a writ, opens a task in upScope
// and connects a Go client to it with the task's token, speaking protocol
// version ("": the client's own).
func upSession(t testing.TB, version string) (w *writ, taskID string, cs *mcp.ClientSession) {
	t.Helper()
	w = upWrit(t, startGoUpstream(t).url)
	taskID, token := w.TaskToken(t, upScope)
	return w, taskID, goClient(t, w.URL+"/mcp/up", token, version)
}

// TestTokenRefusals: every refused token is an HTTP 401 with the MCP
// challenge naming writ's RFC 9728 metadata, or 403 insufficient_scope,
// and nothing reaches the upstream.
func TestTokenRefusals(t *testing.T) {
	up := startGoUpstream(t)
	w := upWrit(t, up.url)
	endpoint := w.URL + "/mcp/up"
	meta := w.URL + "/.well-known/oauth-protected-resource/mcp/up"

	// Expiry, on a server issuing credentials for one second.
	short := upWrit(t, up.url, func(c *config.Config) { c.Credentials.MaxTTL = time.Second })
	_, expired := short.TaskToken(t, upScope)
	time.Sleep(1100 * time.Millisecond) // the credential's lifetime passes
	a := rawPost(t, short.URL+"/mcp/up", expired, initialize, nil)
	if ch := a.header.Get("WWW-Authenticate"); a.status != 401 || !strings.Contains(ch, `error="invalid_token"`) ||
		!strings.Contains(ch, `resource_metadata="`+short.URL+"/.well-known/oauth-protected-resource/mcp/up"+`"`) {
		t.Errorf("expired token: %d %q", a.status, ch)
	}

	revokedID, revoked := w.TaskToken(t, upScope)
	if st := w.Do(t, "POST", "/v1/tasks/"+revokedID+"/revoke", w.Tok["alice"], map[string]string{"reason": "test"}, nil); st != http.StatusOK {
		t.Fatalf("revoke: %d", st)
	}
	_, other := w.TaskToken(t, api.Scope{Tools: []string{"billing.*"}, Resources: []string{"*"}, Operations: []string{"call"},
		DataClass: "internal", Environments: []string{"dev"}})
	_, token := w.TaskToken(t, upScope)
	secondID, second := w.TaskToken(t, upScope)
	before := len(up.seen()) // writ's own connection, made at start

	for _, tc := range []struct {
		name, token string
		status      int
		challenge   string
	}{
		{"missing", "", 401, `Bearer realm="writ", resource_metadata="` + meta + `"`},
		{"garbage", "not-a-jwt", 401, `error="invalid_token"`},
		{"revoked", revoked, 401, `error="invalid_token"`},
		{"other task's scope", other, 403, `error="insufficient_scope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := rawPost(t, endpoint, tc.token, initialize, nil)
			ch := a.header.Get("WWW-Authenticate")
			if a.status != tc.status || !strings.Contains(ch, tc.challenge) || !strings.Contains(ch, `resource_metadata="`+meta+`"`) {
				t.Errorf("answer %d, WWW-Authenticate %q: want %d with %s and the metadata URL", a.status, ch, tc.status, tc.challenge)
			}
			var e api.Error
			if json.Unmarshal([]byte(a.body), &e) != nil || e.Error == "" || e.Detail == "" {
				t.Errorf("body %s: want {error, detail}", a.body)
			}
		})
	}
	if n := len(up.seen()) - before; n != 0 {
		t.Errorf("the upstream saw %d requests from refused tokens", n)
	}

	// The metadata names the endpoint as the resource and writ as its
	// authorization server.
	var md map[string]any
	if st := w.Do(t, "GET", "/.well-known/oauth-protected-resource/mcp/up", "", nil, &md); st != 200 || md["resource"] != endpoint {
		t.Errorf("metadata %d %v: want resource %s", st, md, endpoint)
	}
	if as, _ := md["authorization_servers"].([]any); len(as) != 1 || as[0] != w.URL {
		t.Errorf("authorization_servers %v: want [%s]", md["authorization_servers"], w.URL)
	}

	// A session opened by one task is not usable with another task's token.
	a = rawPost(t, endpoint, token, initialize, nil)
	sid := a.header.Get("Mcp-Session-Id")
	if a.status != 200 || sid == "" {
		t.Fatalf("initialize: %d %s", a.status, a.body)
	}
	b := rawPost(t, endpoint, second, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`,
		map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"})
	wantRefusal(t, "another task's token on a session", b, http.StatusForbidden)
	// The session's own task still uses it; ended, it is gone.
	list := map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"}
	rawPost(t, endpoint, token, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, list)
	if a := rawPost(t, endpoint, token, `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`, list); a.status != http.StatusOK {
		t.Errorf("the session's own task: %d %s", a.status, a.body)
	}

	// Refusals of verified tokens are in the ledger.
	rejected := ofType(w.Trace(t, revokedID), "auth.rejected")
	if len(rejected) == 0 {
		t.Errorf("no auth.rejected recorded for the revoked token")
	}
	hijack := ofType(w.Trace(t, secondID), "auth.rejected")
	if len(hijack) != 1 || hijack[0].Data.Reason != "session_of_another_task" {
		t.Errorf("auth.rejected of the task whose token was used on another's session: %+v, want one, session_of_another_task", hijack)
	}
}

// TestBadRequests: oversized bodies, malformed JSON-RPC and a foreign
// Origin are refused, and the gateway keeps serving.
func TestBadRequests(t *testing.T) {
	up := startGoUpstream(t)
	w := upWrit(t, up.url, func(c *config.Config) { c.MCP.AllowedOrigins = []string{"https://app.example.com"} })
	endpoint := w.URL + "/mcp/up"
	_, token := w.TaskToken(t, upScope)

	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"` + strings.Repeat("x", gateway.DefaultMaxRequestBytes) + `"}}}`
	wantRefusal(t, "oversized", rawPost(t, endpoint, token, big, nil), http.StatusRequestEntityTooLarge)
	wantRefusal(t, "truncated JSON", rawPost(t, endpoint, token, `{"jsonrpc":"2.0","id":1,"method":`, nil), http.StatusBadRequest)
	wantRefusal(t, "not JSON-RPC", rawPost(t, endpoint, token, `[1,2,3]`, nil), 0)
	wantRefusal(t, "foreign Origin", rawPost(t, endpoint, token, initialize, map[string]string{"Origin": "http://evil.example"}), http.StatusForbidden)
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	wantRefusal(t, "unknown session", rawPost(t, endpoint, token, list,
		map[string]string{"Mcp-Session-Id": "NOSUCHSESSION", "Mcp-Protocol-Version": "2025-11-25"}), http.StatusNotFound)
	wantRefusal(t, "unsupported protocol version", rawPost(t, endpoint, token, list,
		map[string]string{"Mcp-Protocol-Version": "1999-01-01"}), http.StatusBadRequest)
	wantRefusal(t, "no event streams accepted", rawPost(t, endpoint, token, initialize, map[string]string{"Accept": "text/html"}), 0)
	wantRefusal(t, "not JSON", rawPost(t, endpoint, token, initialize, map[string]string{"Content-Type": "text/plain"}), http.StatusUnsupportedMediaType)
	if a := rawPost(t, endpoint, token, initialize, map[string]string{"Origin": "https://app.example.com"}); a.status != http.StatusOK {
		t.Errorf("allowed Origin: %d %s, want 200", a.status, a.body)
	}
	if a := rawPost(t, endpoint, token, initialize, map[string]string{"Origin": w.URL}); a.status != http.StatusOK {
		t.Errorf("writ's own Origin: %d %s, want 200", a.status, a.body)
	}
	if a := rawPost(t, w.URL+"/mcp/nosuch", token, initialize, nil); a.status != http.StatusNotFound {
		t.Errorf("unknown server: %d %s, want 404", a.status, a.body)
	}

	// Bad parameters inside a session are JSON-RPC errors.
	cs := goClient(t, endpoint, token, "2025-11-25")
	ctx := context.Background()
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: []int{1}})
	var we *jsonrpc.Error
	if !errors.As(err, &we) || we.Code != jsonrpc.CodeInvalidParams {
		t.Errorf("arguments not an object: %v, want invalid params", err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "still here"}})
	if err != nil || res.IsError {
		t.Fatalf("after bad requests: %v %+v", err, res)
	}
}

// wantRefusal checks an HTTP refusal: status (any 4xx when 0) and writ's
// JSON error body, whoever refused (writ, or the MCP SDK inside it).
func wantRefusal(t testing.TB, what string, a rawAnswer, status int) {
	t.Helper()
	if (status == 0 && (a.status < 400 || a.status > 499)) || (status != 0 && a.status != status) {
		t.Errorf("%s: %d %s, want %d", what, a.status, a.body[:min(len(a.body), 200)], status)
		return
	}
	var e api.Error
	if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Error == "" || e.Detail == "" ||
		!strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Errorf("%s: %d %q (%s): want a JSON body {error, detail}", what, a.status, a.body[:min(len(a.body), 200)], a.header.Get("Content-Type"))
	}
}

// callErr calls tool through cs with a deadline well above the gateway's
// own, so that a hang fails the test rather than blocking it.
func callErr(t testing.TB, cs *mcp.ClientSession, tool string, args any) (*mcp.CallToolResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if ctx.Err() != nil {
		t.Fatalf("%s: the gateway did not answer within 30s", tool)
	}
	return res, err
}

// wantUpstreamError checks a failed call: a JSON-RPC error saying what
// went wrong, and the authorization and its failed result in the ledger.
func wantUpstreamError(t testing.TB, w *writ, taskID string, err error, want string) {
	t.Helper()
	var we *jsonrpc.Error
	if !errors.As(err, &we) || we.Code != gateway.CodeUnavailable || !strings.Contains(we.Message, want) {
		t.Fatalf("error %v: want code %d saying %q", err, gateway.CodeUnavailable, want)
	}
	evs := w.Trace(t, taskID)
	auth, done := ofType(evs, "action.authorized"), ofType(evs, "action.completed")
	if len(auth) != 1 || len(done) != 1 || done[0].Data.ActionID != auth[0].Data.ActionID || done[0].Data.Status != "error" {
		t.Errorf("ledger: authorized %+v, completed %+v: want one of each, the result an error", auth, done)
	}
}

func TestUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/mcp"
	ln.Close()
	w := upWrit(t, dead)
	taskID, token := w.TaskToken(t, upScope)
	cs := goClient(t, w.URL+"/mcp/up", token, "")
	_, err = callErr(t, cs, "echo", map[string]any{"message": "anyone?"})
	wantUpstreamError(t, w, taskID, err, "upstream unavailable: up")
	if strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("the error %q gives the upstream's address away", err)
	}

	// Listing fails the same way, and records nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cs.ListTools(ctx, nil); err == nil || !strings.Contains(err.Error(), "upstream unavailable") {
		t.Errorf("listing with the upstream down: %v", err)
	}
}

func TestUpstreamSlow(t *testing.T) {
	up := startGoUpstream(t)
	w := startWrit(t, config.MCPConfig{Servers: map[string]config.MCPServer{"up": {URL: up.url, Timeout: 300 * time.Millisecond}}}, config.ProxyConfig{})
	taskID, token := w.TaskToken(t, upScope)
	cs := goClient(t, w.URL+"/mcp/up", token, "")
	_, err := callErr(t, cs, "slow", map[string]any{"millis": 2000})
	wantUpstreamError(t, w, taskID, err, "did not answer within 300ms")

	// The upstream is still usable afterwards.
	res, err := callErr(t, cs, "echo", map[string]any{"message": "after the timeout"})
	if err != nil || res.IsError {
		t.Fatalf("echo after a timeout: %v %+v", err, res)
	}
}

// TestToolTimeout: a tool's own timeout replaces its server's, for that
// tool alone.
func TestToolTimeout(t *testing.T) {
	up := startGoUpstream(t)
	w := startWrit(t, config.MCPConfig{Servers: map[string]config.MCPServer{
		"up":     {URL: up.url, Timeout: 300 * time.Millisecond, Tools: map[string]config.MCPTool{"slow": {Timeout: 10 * time.Second}}},
		"shared": {URL: up.url, Timeout: 10 * time.Second, Tools: map[string]config.MCPTool{"slow": {Timeout: 200 * time.Millisecond}}},
	}}, config.ProxyConfig{})
	taskID, token := w.TaskToken(t, sessionScope)
	if res, err := callErr(t, goClient(t, w.URL+"/mcp/up", token, ""), "slow", map[string]any{"millis": 600}); err != nil || res.IsError {
		t.Errorf("a 600ms call of a tool allowed 10s, on a server allowed 300ms: %v %+v", err, res)
	}
	_, err := callErr(t, goClient(t, w.URL+"/mcp/shared", token, ""), "slow", map[string]any{"millis": 600})
	var we *jsonrpc.Error
	if !errors.As(err, &we) || we.Code != gateway.CodeUnavailable || !strings.Contains(we.Message, "did not answer within 200ms") {
		t.Errorf("a 600ms call of a tool allowed 200ms, on a server allowed 10s: %v", err)
	}
	if done := ofType(w.Trace(t, taskID), "action.completed"); len(done) != 2 || done[1].Data.Status != "error" {
		t.Errorf("completed %+v: want the timed-out call recorded as an error", done)
	}
}

func TestUpstreamGarbage(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"text": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "this is not MCP")
		},
		"bad json": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"jsonrpc":"2.0","id":`)
		},
		"500": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := &http.Server{Handler: h}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
			w := upWrit(t, "http://"+ln.Addr().String()+"/mcp")
			taskID, token := w.TaskToken(t, upScope)
			cs := goClient(t, w.URL+"/mcp/up", token, "")
			_, err = callErr(t, cs, "echo", map[string]any{"message": "hello?"})
			wantUpstreamError(t, w, taskID, err, "upstream unavailable: up")
		})
	}
	// A stdio "server" that writes garbage and never answers.
	t.Run("stdio", func(t *testing.T) {
		if _, err := exec.LookPath("sh"); err != nil {
			t.Skip("needs sh")
		}
		w := startWrit(t, config.MCPConfig{Servers: map[string]config.MCPServer{"up": {
			Command: []string{"sh", "-c", "echo 'this is not JSON-RPC'; echo '{\"jsonrpc\":'; exec cat >/dev/null"},
			Timeout: 500 * time.Millisecond}}}, config.ProxyConfig{})
		taskID, token := w.TaskToken(t, upScope)
		cs := goClient(t, w.URL+"/mcp/up", token, "")
		_, err := callErr(t, cs, "echo", map[string]any{"message": "hello?"})
		wantUpstreamError(t, w, taskID, err, "upstream unavailable: up")
	})
}

// TestCredentialInjection: the upstream gets the credentials writ's
// configuration names, never the agent's token, and the secret is in no
// ledger event.
func TestCredentialInjection(t *testing.T) {
	up := startGoUpstream(t)
	secretFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secretFile, []byte("upstream-bearer-xyz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WRIT_TEST_UPSTREAM_KEY", "api-key-123")
	w := startWrit(t, config.MCPConfig{Servers: map[string]config.MCPServer{"up": {URL: up.url,
		Headers: map[string]string{"Authorization": "Bearer ${file:" + secretFile + "}", "X-Api-Key": "${env:WRIT_TEST_UPSTREAM_KEY}"}}}}, config.ProxyConfig{})
	taskID, token := w.TaskToken(t, upScope)
	cs := goClient(t, w.URL+"/mcp/up", token, "")
	if res, err := callErr(t, cs, "echo", map[string]any{"message": "who am I"}); err != nil || res.IsError {
		t.Fatalf("echo: %v %+v", err, res)
	}
	seen := up.seen()
	if len(seen) == 0 {
		t.Fatal("the upstream saw no request")
	}
	for _, h := range seen {
		if h.Get("Authorization") != "Bearer upstream-bearer-xyz" || h.Get("X-Api-Key") != "api-key-123" {
			t.Errorf("upstream saw Authorization %q, X-Api-Key %q: want the configured secrets", h.Get("Authorization"), h.Get("X-Api-Key"))
		}
		for k, v := range h {
			if strings.Contains(strings.Join(v, " "), token) {
				t.Errorf("the agent's token reached the upstream in %s", k)
			}
		}
	}
	var tr api.Trace
	w.Do(t, "GET", "/v1/tasks/"+taskID+"/trace", w.Tok["audrey"], nil, &tr)
	raw, _ := json.Marshal(tr)
	if bytes.Contains(raw, []byte("upstream-bearer-xyz")) || bytes.Contains(raw, []byte("api-key-123")) {
		t.Error("an upstream secret is in the ledger")
	}
}

// TestResultTooLarge: a result larger than the ledger records is withheld
// from the agent, with the reason, and the ledger holds the action's
// outcome: an error naming the reason, and the withheld result's size (no
// plain digest of it).
func TestResultTooLarge(t *testing.T) {
	up := startGoUpstream(t)
	w := startWrit(t, config.MCPConfig{Servers: map[string]config.MCPServer{"up": {URL: up.url}}}, config.ProxyConfig{},
		func(c *config.Config) { c.Ledger.MaxBodyBytes = 64 << 10 })
	taskID, token := w.TaskToken(t, sessionScope)
	cs := goClient(t, w.URL+"/mcp/up", token, "")
	_, err := callErr(t, cs, "big", map[string]any{"bytes": 100 << 10})
	var we *jsonrpc.Error
	if !errors.As(err, &we) || we.Code != gateway.CodeNotRecorded || !strings.Contains(we.Message, "too large to record") {
		t.Fatalf("a result too large to record: %v, want code %d saying so", err, gateway.CodeNotRecorded)
	}
	evs := w.Trace(t, taskID)
	auth, done := ofType(evs, "action.authorized"), ofType(evs, "action.completed")
	if len(auth) != 1 || len(done) != 1 || done[0].Data.ActionID != auth[0].Data.ActionID || done[0].Data.Status != "error" {
		t.Fatalf("ledger: authorized %+v, completed %+v: want the action's outcome, an error", auth, done)
	}
	// A result within the limit still comes through.
	if res, err := callErr(t, cs, "big", map[string]any{"bytes": 10 << 10}); err != nil || res.IsError {
		t.Errorf("a 10 KiB result: %v %+v", err, res)
	}

	var withheld int
	for _, body := range w.Bodies(t, "output") {
		var out struct {
			Error    struct{ Message string } `json:"error"`
			Withheld map[string]any           `json:"withheld"`
		}
		if json.Unmarshal(body, &out) != nil || out.Withheld == nil {
			continue
		}
		withheld++
		if n, _ := out.Withheld["bytes"].(float64); n <= 100<<10 || len(out.Withheld) != 1 || !strings.Contains(out.Error.Message, "too large") {
			t.Errorf("recorded outcome %s: want the reason, and only the withheld result's size", body)
		}
	}
	if withheld != 1 {
		t.Errorf("%d recorded outcomes of a withheld result, want 1", withheld)
	}
}
