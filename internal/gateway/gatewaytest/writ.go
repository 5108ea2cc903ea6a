// Package gatewaytest runs a real writ server for the gateway and proxy
// tests: dev identities, tasks, task tokens and the ledger's trace.
package gatewaytest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/credential"
	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/server"
	"github.com/writhq/writ/internal/server/servertest"
)

// Agent is the workload the tasks are opened for.
const Agent = "spiffe://writ.dev/agent/mcp"

// Writ is a running writ server for a test.
type Writ struct {
	Srv *server.Server
	URL string
	Dir string
	Tok map[string]string // dev tokens of humans

	stop func()
}

// Start starts a dev writ server with mcp and proxy configured.
func Start(t testing.TB, mcp config.MCPConfig, proxy config.ProxyConfig, opts ...func(*config.Config)) *Writ {
	t.Helper()
	dir := t.TempDir()
	cfg := servertest.Dev(dir, "dev")
	cfg.MCP, cfg.Proxy = mcp, proxy
	// A loaded test machine can take longer than the default 50ms to
	// evaluate a policy, which would deny: these tests are not about that.
	cfg.Policy.Timeout = 10 * time.Second
	for _, o := range opts {
		o(&cfg)
	}
	srv := servertest.Start(t, cfg)
	w := &Writ{Srv: srv.Server, URL: srv.URL, Dir: dir, Tok: map[string]string{}}
	w.stop = sync.OnceFunc(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("server stopped with %v", err)
		}
	})
	for name, role := range map[string]identity.Role{"alice": identity.RoleRequester, "audrey": identity.RoleAuditor, "bob": identity.RoleApprover} {
		s, err := identity.DevToken(dir, name, []identity.Role{role}, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		w.Tok[name] = s
	}
	return w
}

// Stop stops the server (before the test ends, to read its data directory).
func (w *Writ) Stop() { w.stop() }

// Bodies returns the committed bodies named name, by ledger index, read
// from the stopped server's data directory.
func (w *Writ) Bodies(t testing.TB, name string) map[uint64][]byte {
	t.Helper()
	w.Stop()
	ctx := context.Background()
	d, err := datadir.Open(ctx, w.Dir, datadir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out := map[uint64][]byte{}
	err = d.Store.ScanBodies(ctx, func(b ledger.Body) error {
		if b.Name == name {
			out[b.Index] = append([]byte(nil), b.Data...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Do sends a JSON request with a bearer token and decodes a JSON answer.
func (w *Writ) Do(t testing.TB, method, path, token string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	a := Send(t, method, w.URL+path, token, http.Header{"Content-Type": {"application/json"}}, rd)
	if out != nil && len(a.Body) > 0 {
		if err := json.Unmarshal([]byte(a.Body), out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, a.Status, a.Body)
		}
	}
	return a.Status
}

// Answer is a whole HTTP response, as the tests read it.
type Answer struct {
	Status int
	Header http.Header
	Body   string
}

// Send sends one request to target with header (the keys as given) and, when
// token is set, token as its Bearer credential, and reads the whole
// answer. A request that takes over 30s fails the test instead of
// hanging it.
func Send(t testing.TB, method, target, token string, header http.Header, body io.Reader) Answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Answer{resp.StatusCode, resp.Header, string(b)}
}

// TaskToken opens an active task with scope for the test agent and
// returns its ID and a task token.
func (w *Writ) TaskToken(t testing.TB, sc api.Scope) (string, string) {
	t.Helper()
	id := w.openTask(t, "", sc)
	return id, w.Token(t, id)
}

// ChildTaskToken opens an active child task of parent with scope, for the
// test agent, and returns its ID and the task token the agent gets by
// delegation with parent's token.
func (w *Writ) ChildTaskToken(t testing.TB, parent, parentToken string, sc api.Scope) (string, string) {
	t.Helper()
	id := w.openTask(t, parent, sc)
	form := url.Values{"grant_type": {credential.GrantTypeTokenExchange}, "scope": {"task:" + id},
		"subject_token": {parentToken}, "subject_token_type": {credential.TokenTypeAccessToken},
		"actor_token": {w.svid(t)}, "actor_token_type": {credential.TokenTypeJWT}}
	return id, w.exchange(t, form)
}

func (w *Writ) openTask(t testing.TB, parent string, sc api.Scope) string {
	t.Helper()
	open := api.OpenTask{Agent: Agent, Intent: "exercise the MCP gateway", Scope: sc, TTL: "15m"}
	if parent != "" {
		open.Parent = &parent
	}
	var opened api.TaskOpened
	if st := w.Do(t, "POST", "/v1/tasks", w.Tok["alice"], open, &opened); st != http.StatusCreated {
		t.Fatalf("open task: %d %+v", st, opened)
	}
	if opened.State != "active" {
		t.Fatalf("task %s is %s, want active", opened.TaskID, opened.State)
	}
	return opened.TaskID
}

// Token exchanges the agent's dev SVID for a task token.
func (w *Writ) Token(t testing.TB, taskID string) string {
	t.Helper()
	form := url.Values{"grant_type": {credential.GrantTypeTokenExchange}, "subject_token": {w.svid(t)},
		"subject_token_type": {credential.TokenTypeJWT}, "scope": {"task:" + taskID}}
	return w.exchange(t, form)
}

func (w *Writ) svid(t testing.TB) string {
	t.Helper()
	svid, err := identity.DevSVID(w.Dir, Agent, []string{"writ"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return svid
}

func (w *Writ) exchange(t testing.TB, form url.Values) string {
	t.Helper()
	resp, err := http.PostForm(w.URL+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr api.TokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token exchange: %d %v", resp.StatusCode, err)
	}
	return tr.AccessToken
}

// Event is the part of a ledger event the tests read.
type Event struct {
	Type       string `json:"type"`
	DecisionID string `json:"decision_id"`
	TraceID    string `json:"trace_id"`
	Data       struct {
		ActionID string   `json:"action_id"`
		Tool     string   `json:"tool"`
		Resource string   `json:"resource"`
		Effect   string   `json:"effect"`
		Status   string   `json:"status"`
		Reason   string   `json:"reason"`
		Recorded bool     `json:"output_recorded"`
		Redacted []string `json:"redacted"`
		Listed   int      `json:"listed"`
		Hidden   []struct {
			Tool       string   `json:"tool"`
			DecisionID string   `json:"decision_id"`
			Reasons    []string `json:"reasons"`
		} `json:"hidden"`
	} `json:"data"`
}

// Trace returns the task's ledger events, read through the trace API.
func (w *Writ) Trace(t testing.TB, taskID string) []Event {
	t.Helper()
	var tr api.Trace
	if st := w.Do(t, "GET", "/v1/tasks/"+taskID+"/trace", w.Tok["audrey"], nil, &tr); st != http.StatusOK {
		t.Fatalf("trace: %d", st)
	}
	out := make([]Event, len(tr.Events))
	for i, e := range tr.Events {
		if err := json.Unmarshal(e.Event, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// OfType returns the events of type typ.
func OfType(evs []Event, typ string) []Event {
	var out []Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}
