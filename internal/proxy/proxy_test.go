package proxy_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/gateway/gatewaytest"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
	"github.com/writhq/writ/internal/testpki"
)

// issuesScope lets a task read issues of the tracker upstream.
var issuesScope = api.Scope{Tools: []string{"tracker.issues"}, Resources: []string{"https://tracker.example/repos/acme/*"},
	Operations: []string{"read", "write"}, DataClass: "internal", Environments: []string{"dev"}}

// tracker is a REST upstream that remembers what it was sent.
type tracker struct {
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
	release  chan struct{} // the stream's second half waits for it
}

func (tr *tracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	tr.mu.Lock()
	tr.requests = append(tr.requests, r)
	tr.bodies = append(tr.bodies, string(b))
	tr.mu.Unlock()
	switch {
	case r.URL.Path == "/repos/acme/widgets/events":
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-tr.release
		fmt.Fprint(w, "data: second\n\n")
	case r.Method == "POST":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"created":true,"echo":%s}`, b)
	default:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"repo":%q,"issues":[1,2,3],"page":%q}`, strings.Split(r.URL.Path, "/")[3], r.URL.Query().Get("page"))
	}
}

func (tr *tracker) seen() []*http.Request {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]*http.Request(nil), tr.requests...)
}

func startProxy(t *testing.T, upstream string) (*gatewaytest.Writ, *tracker) {
	tr := &tracker{release: make(chan struct{})}
	if upstream == "" {
		ts := httptest.NewServer(tr)
		t.Cleanup(ts.Close)
		upstream = ts.URL
	}
	t.Setenv("WRIT_TEST_TRACKER_TOKEN", "tracker-secret-42")
	w := gatewaytest.Start(t, config.MCPConfig{}, config.ProxyConfig{Upstreams: map[string]config.ProxyUpstream{
		"tracker": {URL: upstream, Headers: map[string]string{"Authorization": "token ${env:WRIT_TEST_TRACKER_TOKEN}"},
			Timeout: 5 * time.Second, MaxBodyBytes: 4096,
			Rules: []config.ProxyRule{
				{Method: "GET", Path: "/repos/{owner}/{repo}/issues", Tool: "tracker.issues", Operation: "read",
					Resource: "https://tracker.example/repos/{owner}/{repo}"},
				{Method: "POST", Path: "/repos/{owner}/{repo}/issues", Tool: "tracker.issues", Operation: "write",
					Resource: "https://tracker.example/repos/{owner}/{repo}"},
				{Method: "GET", Path: "/repos/{owner}/{repo}/events", Tool: "tracker.issues", Operation: "read",
					Resource: "https://tracker.example/repos/{owner}/{repo}"},
				{Method: "DELETE", Path: "/repos/{owner}/{repo}", Tool: "tracker.admin", Operation: "delete",
					Resource: "https://tracker.example/repos/{owner}/{repo}"},
			}}}})
	return w, tr
}

type answer struct {
	status int
	header http.Header
	body   string
}

// call sends body as JSON, with token as its Bearer credential when set.
func call(t *testing.T, method, url, token, body string) answer {
	t.Helper()
	return send(t, method, url, token, http.Header{"Content-Type": {"application/json"}}, body)
}

func TestProxy(t *testing.T) {
	w, tr := startProxy(t, "")
	taskID, token := w.TaskToken(t, issuesScope)
	base := w.URL + "/proxy/tracker"

	// Allowed: forwarded with writ's credential, never the agent's token.
	a := call(t, "GET", base+"/repos/acme/widgets/issues?page=2", token, "")
	if a.status != 200 || a.body != `{"repo":"widgets","issues":[1,2,3],"page":"2"}` || a.header.Get("Writ-Action-Id") == "" {
		t.Fatalf("allowed GET: %d %q %v", a.status, a.body, a.header)
	}
	a = call(t, "POST", base+"/repos/acme/widgets/issues", token, `{"title":"bug","token":"agent-side-secret"}`)
	if a.status != 201 || !strings.Contains(a.body, `"title":"bug"`) {
		t.Fatalf("allowed POST: %d %q", a.status, a.body)
	}
	for _, r := range tr.seen() {
		if r.Header.Get("Authorization") != "token tracker-secret-42" {
			t.Errorf("upstream saw Authorization %q, want the configured credential", r.Header.Get("Authorization"))
		}
	}

	// Denied by policy: out of scope, not forwarded, the decision named.
	n := len(tr.seen())
	a = call(t, "DELETE", base+"/repos/acme/widgets", token, "")
	var denied struct {
		Error      string `json:"error"`
		DecisionID string `json:"decision_id"`
	}
	if json.Unmarshal([]byte(a.body), &denied); a.status != 403 || denied.DecisionID == "" {
		t.Errorf("denied DELETE: %d %s", a.status, a.body)
	}
	// No rule: never forwarded.
	if a = call(t, "GET", base+"/admin/users", token, ""); a.status != 403 || !strings.Contains(a.body, "no_rule") {
		t.Errorf("unmapped path: %d %s", a.status, a.body)
	}
	// Too large a body.
	if a = call(t, "POST", base+"/repos/acme/widgets/issues", token, `{"x":"`+strings.Repeat("y", 5000)+`"}`); a.status != 413 {
		t.Errorf("oversized body: %d %s", a.status, a.body)
	}
	// No token.
	if a = call(t, "GET", base+"/repos/acme/widgets/issues", "", ""); a.status != 401 || a.header.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d %v", a.status, a.header)
	}
	if got := len(tr.seen()); got != n {
		t.Errorf("the upstream saw %d refused requests", got-n)
	}

	evs := w.Trace(t, taskID)
	auth, done, den := gatewaytest.OfType(evs, "action.authorized"), gatewaytest.OfType(evs, "action.completed"), gatewaytest.OfType(evs, "action.denied")
	if len(auth) != 2 || len(done) != 2 || len(den) != 1 {
		t.Fatalf("ledger: %d authorized, %d completed, %d denied; want 2, 2, 1", len(auth), len(done), len(den))
	}
	if auth[0].Data.Resource != "https://tracker.example/repos/acme/widgets" || den[0].Data.Tool != "tracker.admin" || den[0].DecisionID != denied.DecisionID {
		t.Errorf("ledger: authorized %+v, denied %+v", auth[0], den[0])
	}
	for _, d := range done {
		if d.Data.Status != "ok" || !d.Data.Recorded {
			t.Errorf("completed %+v: want ok, recorded", d)
		}
	}
}

// TestProxyStreams: a streamed response reaches the agent as it is
// written, and its result is recorded when it ends.
func TestProxyStreams(t *testing.T) {
	w, tr := startProxy(t, "")
	taskID, token := w.TaskToken(t, issuesScope)
	req, _ := http.NewRequest("GET", w.URL+"/proxy/tracker/repos/acme/widgets/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	line, err := rd.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
	// The upstream has not finished: nothing is completed yet.
	if c := gatewaytest.OfType(w.Trace(t, taskID), "action.completed"); len(c) != 0 {
		t.Errorf("completed before the stream ended: %+v", c)
	}
	close(tr.release)
	rest, _ := io.ReadAll(rd)
	if string(rest) != "\ndata: second\n\n" {
		t.Errorf("rest of the stream: %q", rest)
	}
	testkit.Eventually(t, 10*time.Second, func() error {
		if len(gatewaytest.OfType(w.Trace(t, taskID), "action.completed")) == 0 {
			return errors.New("no action.completed after the stream ended")
		}
		return nil
	})
}

func TestProxyUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	w, _ := startProxy(t, dead)
	wantUpstreamFailure(t, w, "upstream down", "upstream_unavailable")
}

// wantUpstreamFailure checks that a task's call of the tracker upstream
// through w is a 502 whose body holds want, completed as an error.
func wantUpstreamFailure(t *testing.T, w *gatewaytest.Writ, what, want string) {
	t.Helper()
	taskID, token := w.TaskToken(t, issuesScope)
	a := call(t, "GET", w.URL+"/proxy/tracker/repos/acme/widgets/issues", token, "")
	if a.status != http.StatusBadGateway || !strings.Contains(a.body, want) {
		t.Errorf("%s: %d %s", what, a.status, a.body)
	}
	done := gatewaytest.OfType(w.Trace(t, taskID), "action.completed")
	if len(done) != 1 || done[0].Data.Status != "error" {
		t.Errorf("completed %+v: want one error result", done)
	}
}

func TestProxyUpstreamSlow(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	w := gatewaytest.Start(t, config.MCPConfig{}, config.ProxyConfig{Upstreams: map[string]config.ProxyUpstream{
		"tracker": {URL: slow.URL, Timeout: 300 * time.Millisecond, Rules: []config.ProxyRule{
			{Method: "GET", Path: "/repos/{owner}/{repo}/issues", Tool: "tracker.issues", Operation: "read",
				Resource: "https://tracker.example/repos/{owner}/{repo}"}}}}})
	wantUpstreamFailure(t, w, "slow upstream", "did not answer within 300ms")
}

// TestProxyTLS: an upstream behind a private CA that requires a client
// certificate is reached with the configured roots and certificate; an
// upstream writ cannot verify is a 502, recorded.
func TestProxyTLS(t *testing.T) {
	pki := testpki.New(t)
	ts := pki.Server(t, &tracker{release: make(chan struct{})})
	rules := []config.ProxyRule{{Method: "GET", Path: "/repos/{owner}/{repo}/issues", Tool: "tracker.issues", Operation: "read",
		Resource: "https://tracker.example/repos/{owner}/{repo}"}}
	w := gatewaytest.Start(t, config.MCPConfig{}, config.ProxyConfig{Upstreams: map[string]config.ProxyUpstream{
		"tracker":   {URL: ts.URL, Rules: rules, TLS: config.UpstreamTLS{CAFile: pki.CAFile, CertFile: pki.CertFile, KeyFile: pki.KeyFile}},
		"untrusted": {URL: ts.URL, Rules: rules},
	}})
	scope := issuesScope
	scope.Tools = []string{"tracker.issues"}
	_, token := w.TaskToken(t, scope)
	if a := call(t, "GET", w.URL+"/proxy/tracker/repos/acme/widgets/issues", token, ""); a.status != 200 || !strings.Contains(a.body, `"repo":"widgets"`) {
		t.Errorf("over mutual TLS: %d %s", a.status, a.body)
	}
	if a := call(t, "GET", w.URL+"/proxy/untrusted/repos/acme/widgets/issues", token, ""); a.status != http.StatusBadGateway {
		t.Errorf("an upstream writ cannot verify: %d %s, want 502", a.status, a.body)
	}
}

// TestProxyInexactNumber: a JSON body holding a number canonical form would
// change is refused with 400 naming where, and never forwarded.
func TestProxyInexactNumber(t *testing.T) {
	w, tr := startProxy(t, "")
	_, token := w.TaskToken(t, issuesScope)
	a := call(t, "POST", w.URL+"/proxy/tracker/repos/acme/widgets/issues", token, `{"title":"bug","amount":12345678901234567891}`)
	var e struct {
		Error  string `json:"error"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal([]byte(a.body), &e); a.status != 400 || e.Error != task.CodeInexactNumber || !strings.Contains(e.Detail, "arguments.body.amount") {
		t.Errorf("inexact number: %d %s; want 400 %s naming arguments.body.amount", a.status, a.body, task.CodeInexactNumber)
	}
	if n := len(tr.seen()); n != 0 {
		t.Errorf("the upstream saw %d refused requests", n)
	}
}
