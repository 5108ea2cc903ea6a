package proxy_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/gateway/gatewaytest"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
)

// eventually waits, with testkit's deadline, until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() error {
		if !cond() {
			return errors.New(what + ": not yet")
		}
		return nil
	})
}

// recorder is an upstream that keeps what it was sent and answers with
// reply.
type recorder struct {
	mu    sync.Mutex
	seen  []*http.Request
	reply func(w http.ResponseWriter, r *http.Request)
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	rec.mu.Lock()
	rec.seen = append(rec.seen, r)
	reply := rec.reply
	rec.mu.Unlock()
	if reply != nil {
		reply(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"ok":true}`)
}

func (rec *recorder) last(t *testing.T) *http.Request {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.seen) == 0 {
		t.Fatal("the upstream saw no request")
	}
	return rec.seen[len(rec.seen)-1]
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.seen)
}

// startRecorder serves rec as upstream "tracker" (and as "custom", which
// forwards X-Custom besides the defaults) with rules for GET and POST.
func startRecorder(t *testing.T, rec *recorder) *gatewaytest.Writ {
	t.Helper()
	ts := httptest.NewServer(rec)
	t.Cleanup(ts.Close)
	rules := []config.ProxyRule{
		{Method: "GET", Path: "/repos/{owner}/{repo}/issues", Tool: "tracker.issues", Operation: "read", Resource: "https://tracker.example/repos/{owner}/{repo}"},
		{Method: "POST", Path: "/repos/{owner}/{repo}/issues", Tool: "tracker.issues", Operation: "write", Resource: "https://tracker.example/repos/{owner}/{repo}"},
	}
	return gatewaytest.Start(t, config.MCPConfig{}, config.ProxyConfig{Upstreams: map[string]config.ProxyUpstream{
		"tracker": {URL: ts.URL, Headers: map[string]string{"Authorization": "token upstream-secret"}, Timeout: 5 * time.Second, Rules: rules},
		"custom":  {URL: ts.URL, ForwardHeaders: []string{"X-Custom", "accept"}, Rules: rules},
	}})
}

// send sends body with header, and token as its Bearer credential when
// set.
func send(t *testing.T, method, url, token string, header http.Header, body string) answer {
	t.Helper()
	a := gatewaytest.Send(t, method, url, token, header, strings.NewReader(body))
	return answer{a.Status, a.Header, a.Body}
}

// TestProxyForwardsOnlyAllowedHeaders: headers that would make the
// upstream act on another method, path, host or client than policy
// decided on never reach it, nor hop-by-hop headers or the agent's
// credentials; the configured list is honoured; hop-by-hop response
// headers do not reach the agent.
func TestProxyForwardsOnlyAllowedHeaders(t *testing.T) {
	rec := &recorder{reply: func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "upstream-internal")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("X-Kept", "yes")
		h.Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}}
	w := startRecorder(t, rec)
	_, token := w.TaskToken(t, issuesScope)
	smuggled := http.Header{
		"X-Http-Method-Override": {"DELETE"}, "X-Http-Method": {"DELETE"}, "X-Method-Override": {"DELETE"},
		"X-Original-Url": {"/admin"}, "X-Rewrite-Url": {"/admin"}, "X-Forwarded-Host": {"evil.example"},
		"X-Forwarded-For": {"10.0.0.1"}, "X-Real-Ip": {"10.0.0.1"}, "Forwarded": {"for=10.0.0.1;host=evil.example"},
		"X-Forwarded-Proto": {"https"}, "X-Forwarded-Prefix": {"/admin"}, "Cookie": {"session=agent"},
		"Dpop": {"proof"}, "X-Custom": {"c"}, "Connection": {"Range"}, "Range": {"bytes=0-1"},
		"Accept": {"application/json"}, "Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"Content-Type": {"application/json"}, "Content-Length": {"2"},
	}
	a := send(t, "POST", w.URL+"/proxy/tracker/repos/acme/widgets/issues", token, smuggled, `{}`)
	if a.status != http.StatusOK {
		t.Fatalf("POST: %d %s", a.status, a.body)
	}
	got := rec.last(t)
	if got.Method != "POST" {
		t.Errorf("upstream method %s", got.Method)
	}
	for k := range smuggled {
		switch k {
		case "Accept", "Traceparent", "Content-Type":
			if got.Header.Get(k) != smuggled.Get(k) {
				t.Errorf("allowed header %s = %q, want %q", k, got.Header.Get(k), smuggled.Get(k))
			}
		case "Content-Length":
		default:
			if v := got.Header.Values(k); len(v) > 0 {
				t.Errorf("the upstream saw %s: %q", k, v)
			}
		}
	}
	if got.Header.Get("Authorization") != "token upstream-secret" {
		t.Errorf("upstream Authorization %q, want writ's configured credential", got.Header.Get("Authorization"))
	}
	for _, k := range []string{"X-Hop", "Keep-Alive", "Proxy-Authenticate", "Connection"} {
		if v := a.header.Values(k); len(v) > 0 {
			t.Errorf("the agent got hop-by-hop response header %s: %q", k, v)
		}
	}
	if a.header.Get("X-Kept") != "yes" {
		t.Errorf("end-to-end response header X-Kept lost")
	}

	// An upstream's own list replaces the default one.
	a = send(t, "GET", w.URL+"/proxy/custom/repos/acme/widgets/issues", token, smuggled, "")
	got = rec.last(t)
	if a.status != http.StatusOK || got.Header.Get("X-Custom") != "c" || got.Header.Get("Accept") != "application/json" || got.Header.Get("Traceparent") != "" || got.Header.Get("X-Http-Method-Override") != "" || got.Header.Get("Authorization") != "" || got.Header.Get("Dpop") != "" {
		t.Errorf("custom list: %d, upstream saw %v", a.status, got.Header)
	}
}

// TestProxyRefusesUnforwardableHeaderConfig: a forward_headers entry writ
// would never forward is refused when the configuration loads.
func TestProxyRefusesUnforwardableHeaderConfig(t *testing.T) {
	rule := []config.ProxyRule{{Method: "GET", Path: "/x", Tool: "t.x"}}
	for _, h := range []string{"X-HTTP-Method-Override", "x-forwarded-host", "Forwarded", "X-Real-IP", "Connection", "Transfer-Encoding",
		"Proxy-Authorization", "Authorization", "DPoP", "X-Original-URL", "X-Rewrite-URL", "Upgrade", "TE", "Host", "bad header"} {
		err := config.ProxyConfig{Upstreams: map[string]config.ProxyUpstream{"u": {URL: "http://127.0.0.1:1", ForwardHeaders: []string{h}, Rules: rule}}}.Validate()
		if err == nil || !strings.Contains(err.Error(), "forward_headers[0]") {
			t.Errorf("forward_headers [%q]: %v, want refused", h, err)
		}
	}
	ok := config.ProxyConfig{Upstreams: map[string]config.ProxyUpstream{"u": {URL: "http://127.0.0.1:1", ForwardHeaders: []string{"X-Request-Id", "Accept"}, Rules: rule}}}
	if err := ok.Validate(); err != nil {
		t.Errorf("an ordinary list: %v", err)
	}
}

// argumentsOf returns the recorded arguments of the task's proxied calls,
// read from the stopped server's ledger bodies.
func argumentsOf(t *testing.T, w *gatewaytest.Writ, name string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, b := range w.Bodies(t, name) {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s body %q: %v", name, b, err)
		}
		out = append(out, m)
	}
	return out
}

// TestProxyQueryAsDecided: a query Go and the upstream could read apart is
// refused; any other is forwarded in the canonical form of the pairs
// policy saw.
func TestProxyQueryAsDecided(t *testing.T) {
	rec := &recorder{}
	w := startRecorder(t, rec)
	_, token := w.TaskToken(t, issuesScope)
	base := w.URL + "/proxy/tracker/repos/acme/widgets/issues"
	for _, q := range []string{"state=open;admin=1", "a=%zz", "a=%ff", "%"} {
		if a := send(t, "GET", base+"?"+q, token, nil, ""); a.status != http.StatusBadRequest || !strings.Contains(a.body, "bad_query") {
			t.Errorf("?%s: %d %s, want 400 bad_query", q, a.status, a.body)
		}
	}
	if n := rec.count(); n != 0 {
		t.Errorf("the upstream saw %d refused requests", n)
	}
	if a := send(t, "GET", base+"?q=a+b&x=%41&flag&&page=2&page=3", token, nil, ""); a.status != http.StatusOK {
		t.Fatalf("good query: %d %s", a.status, a.body)
	}
	if got := rec.last(t).URL.RawQuery; got != "q=a%20b&x=A&flag=&page=2&page=3" {
		t.Errorf("forwarded query %q", got)
	}
	args := argumentsOf(t, w, "arguments")
	if len(args) != 1 {
		t.Fatalf("%d recorded calls, want 1", len(args))
	}
	want := map[string]any{"q": []any{"a b"}, "x": []any{"A"}, "flag": []any{""}, "page": []any{"2", "3"}}
	if got, _ := json.Marshal(args[0]["query"]); string(got) != string(mustMarshal(t, want)) {
		t.Errorf("recorded query %s, want %s", got, mustMarshal(t, want))
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProxyBodyByContent: policy sees a body by what it is, not what its
// Content-Type says; a JSON body the upstream could read otherwise than
// policy did is refused; bodies that are not UTF-8 are recorded by their
// bytes, in both directions.
func TestProxyBodyByContent(t *testing.T) {
	binary := []byte{0xff, 0xfe, 'h', 'i', 0x00, 0xc3}
	rec := &recorder{reply: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=latin1")
		w.Write(binary)
	}}
	w := startRecorder(t, rec)
	_, token := w.TaskToken(t, issuesScope)
	base := w.URL + "/proxy/tracker/repos/acme/widgets/issues"
	text := http.Header{"Content-Type": {"text/plain"}}
	for _, body := range []string{`{"title":"a","title":"b"}`, `{"n":12345678901234567891}`, `[1.00000000000000000001]`, "\ufeff{\"a\":1}", `{"a":"\ud800"}`} {
		if a := send(t, "POST", base, token, text, body); a.status != http.StatusBadRequest ||
			!strings.Contains(a.body, "bad_body") && !strings.Contains(a.body, task.CodeInexactNumber) {
			t.Errorf("body %q: %d %s, want 400 bad_body or inexact_number", body, a.status, a.body)
		}
	}
	if a := send(t, "POST", base, token, http.Header{"Content-Encoding": {"gzip"}}, "x"); a.status != http.StatusUnsupportedMediaType {
		t.Errorf("an encoded body: %d %s, want 415", a.status, a.body)
	}
	if n := rec.count(); n != 0 {
		t.Errorf("the upstream saw %d refused requests", n)
	}
	for _, body := range []string{`{"title":"bug","n":9007199254740991,"f":0.1}`, string(binary), "plain words"} {
		if a := send(t, "POST", base, token, text, body); a.status != http.StatusOK {
			t.Fatalf("body %q: %d %s", body, a.status, a.body)
		}
	}
	args := argumentsOf(t, w, "arguments")
	outputs := argumentsOf(t, w, "output")
	var sawJSON, sawBytes, sawText bool
	for _, a := range args {
		switch b := a["body"].(type) {
		case map[string]any:
			sawJSON = b["title"] == "bug"
		case string:
			sawText = b == "plain words"
		}
		if s, ok := a["body_base64"].(string); ok {
			sawBytes = s == base64.StdEncoding.EncodeToString(binary)
		}
	}
	if !sawJSON || !sawBytes || !sawText {
		t.Errorf("recorded arguments %v: JSON as JSON %v, bytes as base64 %v, text as text %v", args, sawJSON, sawBytes, sawText)
	}
	if len(outputs) != 3 {
		t.Fatalf("%d outputs recorded, want 3", len(outputs))
	}
	for _, o := range outputs {
		if o["body_base64"] != base64.StdEncoding.EncodeToString(binary) || o["body"] != nil {
			t.Errorf("recorded output %v, want the response's bytes as body_base64", o)
		}
	}
}

// streamer is an upstream that streams one event per value the test sends
// on feed, until writ cancels the request (canceled is closed then) or the
// test ends (stop).
type streamer struct {
	feed     chan string
	headers  chan struct{} // closed: write the response headers at once
	arrived  chan struct{} // closed when the first request comes
	once     sync.Once
	canceled chan struct{}
	stop     chan struct{}
}

func newStreamer() *streamer {
	s := &streamer{feed: make(chan string), headers: make(chan struct{}), arrived: make(chan struct{}),
		canceled: make(chan struct{}), stop: make(chan struct{})}
	close(s.headers)
	return s
}

func (s *streamer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.once.Do(func() { close(s.arrived) })
	defer func() {
		if r.Context().Err() != nil {
			close(s.canceled)
		}
	}()
	select {
	case <-s.headers:
	case <-r.Context().Done():
		return
	case <-s.stop:
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for {
		select {
		case v, ok := <-s.feed:
			if !ok {
				return
			}
			fmt.Fprintf(w, "data: %s\n\n", v)
			w.(http.Flusher).Flush()
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		}
	}
}

// TestProxyTaskEndStopsStream: ending the task of a proxied call in
// flight cancels the upstream request, cuts the agent's response off, and
// records the call as cancelled: whether the task is revoked or completed,
// and whether the response has begun or not.
func TestProxyTaskEndStopsStream(t *testing.T) {
	for _, tc := range []struct {
		name, end string
		begun     bool
	}{{"revoked while streaming", "revoke", true}, {"completed while streaming", "complete", true}, {"revoked before the response", "revoke", false}} {
		t.Run(tc.name, func(t *testing.T) {
			up := newStreamer()
			if !tc.begun {
				up.headers = make(chan struct{}) // never closed
			}
			ts := httptest.NewServer(up)
			t.Cleanup(ts.Close)
			w := gatewaytest.Start(t, config.MCPConfig{}, config.ProxyConfig{Upstreams: map[string]config.ProxyUpstream{
				"tracker": {URL: ts.URL, Timeout: time.Minute, Rules: []config.ProxyRule{{Method: "GET", Path: "/repos/{owner}/{repo}/events",
					Tool: "tracker.issues", Operation: "read", Resource: "https://tracker.example/repos/{owner}/{repo}"}}}}})
			// Before the server stops, so that a call writ failed to cancel
			// does not hold up its shutdown.
			t.Cleanup(func() { close(up.stop) })
			taskID, token := w.TaskToken(t, issuesScope)
			req, _ := http.NewRequest("GET", w.URL+"/proxy/tracker/repos/acme/widgets/events", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			type result struct {
				resp *http.Response
				err  error
			}
			answered := make(chan result, 1)
			go func() {
				resp, err := http.DefaultClient.Do(req)
				answered <- result{resp, err}
			}()
			var rd *bufio.Reader
			var res result
			if tc.begun {
				res = <-answered
				if res.err != nil {
					t.Fatal(res.err)
				}
				defer res.resp.Body.Close()
				rd = bufio.NewReader(res.resp.Body)
				up.feed <- "one"
				if line, err := rd.ReadString('\n'); err != nil || line != "data: one\n" {
					t.Fatalf("first event: %q %v", line, err)
				}
			} else {
				// The upstream has the request and has not answered: a
				// task ended before writ sent it would only be refused.
				select {
				case <-up.arrived:
				case res = <-answered:
					t.Fatalf("answered before the upstream had the request: %v", res.err)
				case <-time.After(30 * time.Second):
					t.Fatal("the upstream did not get the request within 30s")
				}
			}

			path := "/v1/tasks/" + taskID + "/" + tc.end
			var body any
			if tc.end == "revoke" {
				body = map[string]string{"reason": "incident"}
			}
			if st := w.Do(t, "POST", path, w.Tok["alice"], body, nil); st != http.StatusOK {
				t.Fatalf("%s: %d", path, st)
			}
			select {
			case <-up.canceled:
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream request was not cancelled within 10s of the task's end")
			}
			if tc.begun {
				rest, err := io.ReadAll(rd)
				if err == nil || strings.Contains(string(rest), "data:") {
					t.Errorf("after the end the agent read %q, %v; want the response cut off", rest, err)
				}
			} else {
				res = <-answered
				if res.err != nil {
					t.Fatal(res.err)
				}
				res.resp.Body.Close()
				if res.resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("answer %d, want 401", res.resp.StatusCode)
				}
			}
			var done []gatewaytest.Event
			eventually(t, "action.completed", func() bool {
				done = gatewaytest.OfType(w.Trace(t, taskID), "action.completed")
				return len(done) > 0
			})
			if len(done) != 1 || done[0].Data.Status != "cancelled" {
				t.Errorf("completed %+v, want one cancelled", done)
			}
		})
	}
}
