package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/client"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/server"
	"github.com/writhq/writ/internal/server/servertest"
)

// testAgent is the dev agent the tests' tasks name.
const testAgent = "spiffe://" + identity.DevTrustDomain + "/agent/summarizer"

// confidential is a scope the default policy sends to approval in prod.
var confidential = api.Scope{Tools: []string{"invoices.*", "mail.send"}, Resources: []string{"erp://invoices/2026-Q3/*", "mail://finance"},
	Operations: []string{"read", "send"}, DataClass: "confidential", Environments: []string{"prod"}}

// testServer is a real writ server in dev mode on a loopback port.
type testServer struct {
	srv *server.Server
	url string
	dir string
}

// startServer starts a dev-mode server; edit adjusts its configuration.
func startServer(t testing.TB, edit func(*config.Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	cfg := servertest.Dev(dir, "prod")
	if edit != nil {
		edit(&cfg)
	}
	s := servertest.Start(t, cfg)
	return &testServer{srv: s.Server, url: s.URL, dir: dir}
}

// policyDir writes the embedded default rego pack to a directory, so a test
// can change it and reload.
func policyDir(t testing.TB) (string, policy.Sources) {
	t.Helper()
	src, err := policy.DefaultPack(policy.EngineRego)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range src.Files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, src
}

// api returns an API client holding a dev token of human with roles.
func (ts *testServer) api(t testing.TB, human string, roles ...identity.Role) *client.Client {
	t.Helper()
	tok, err := identity.DevToken(ts.dir, human, roles, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return client.New(ts.url, tok)
}

// openPending opens a confidential task as requester, which the default
// policy holds for approval.
func (ts *testServer) openPending(t testing.TB, requester *client.Client, intent string) api.TaskOpened {
	t.Helper()
	out, err := requester.OpenTask(context.Background(), api.OpenTask{Agent: testAgent, Intent: intent, TTL: "15m", Scope: confidential})
	if err != nil {
		t.Fatalf("opening a task: %v", err)
	}
	if out.State != api.StatePendingApproval {
		t.Fatalf("task is %s, want pending_approval", out.State)
	}
	return out
}

// openApproved opens a confidential task as requester and has approver
// approve it, so that it is active.
func (ts *testServer) openApproved(t testing.TB, requester *client.Client, intent, approver string) api.TaskOpened {
	t.Helper()
	task := ts.openPending(t, requester, intent)
	if _, err := ts.api(t, approver, identity.RoleApprover).Decide(context.Background(), task.TaskID, api.Decide{Decision: "approve"}); err != nil {
		t.Fatal(err)
	}
	return task
}

// agentFor exchanges the test agent's SVID for a token of task id.
func (ts *testServer) agentFor(t testing.TB, id string) *client.Client {
	t.Helper()
	svid, err := identity.DevSVID(ts.dir, testAgent, []string{"writ"}, 5*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	base := client.New(ts.url, "")
	tok, err := base.ExchangeToken(context.Background(), svid, id)
	if err != nil {
		t.Fatalf("token exchange: %v", err)
	}
	return base.WithToken(tok.AccessToken)
}

// browserless is an HTTP client with a cookie jar that does not follow
// redirects, for the console's pages and forms.
type browserless struct {
	t    testing.TB
	base string
	c    *http.Client
	mu   sync.Mutex
	csrf string
}

func newBrowserless(t testing.TB, base string) *browserless {
	jar, _ := cookiejar.New(nil)
	return &browserless{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is one answer read whole.
type page struct {
	status int
	header http.Header
	body   string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browserless) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	if m := csrfField.FindSubmatch(body); m != nil {
		b.mu.Lock()
		b.csrf = string(m[1])
		b.mu.Unlock()
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func (b *browserless) get(path string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a form; the CSRF token of the last page read is added when
// withCSRF is set.
func (b *browserless) post(path string, form url.Values, withCSRF bool) page {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if withCSRF {
		b.mu.Lock()
		form.Set("csrf", b.csrf)
		b.mu.Unlock()
	}
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// signIn signs in through the dev sign-in form.
func (b *browserless) signIn(person string, roles ...identity.Role) {
	b.t.Helper()
	if p := b.get("/ui/login"); p.status != http.StatusOK {
		b.t.Fatalf("GET /ui/login: %d", p.status)
	}
	form := url.Values{"person": {person}}
	for _, r := range roles {
		form.Add("role", string(r))
	}
	p := b.post("/ui/login/dev", form, true)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/" {
		b.t.Fatalf("dev sign-in: %d %s\n%s", p.status, p.header.Get("Location"), p.body)
	}
}

// taskState reads a task's state through the API.
func taskState(t testing.TB, c *client.Client, id string) string {
	t.Helper()
	tk, err := c.GetTask(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tk.State
}

// traceTypes lists the event types of a task's trace.
func traceTypes(t testing.TB, c *client.Client, id string) []string {
	t.Helper()
	tr, err := c.Trace(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range tr.Events {
		var ev struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(e.Event, &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev.Type)
	}
	return out
}
