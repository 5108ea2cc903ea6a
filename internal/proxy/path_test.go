package proxy_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/gateway/gatewaytest"
	"github.com/writhq/writ/internal/proxy"
	"github.com/writhq/writ/internal/task"
)

// TestProxyPaths: a path that would resolve or split differently at the
// upstream than in writ's rules is refused before any rule sees it, and
// never forwarded; a wildcard that holds an encoded '?' stays encoded in
// the resource and in the path sent upstream.
func TestProxyPaths(t *testing.T) {
	w, tr := startProxy(t, "")
	taskID, token := w.TaskToken(t, issuesScope)
	base := w.URL + "/proxy/tracker"

	for _, p := range []string{
		"/repos/acme/%2e%2e/issues",
		"/repos/acme/%2E./issues",
		"/repos/acme/x%2F..%2F..%2Fevil/issues",
		"/repos/acme/..;/issues",
		"/repos/acme/x%5C..%5Cevil/issues",
		"/repos/acme/x%00/issues",
	} {
		if a := call(t, "GET", base+p, token, ""); a.status != http.StatusBadRequest || !strings.Contains(a.body, "invalid_request") {
			t.Errorf("GET %s: %d %s; want 400 invalid_request", p, a.status, a.body)
		}
	}
	// A plain ".." never reaches the proxy: the server's router redirects
	// to the cleaned path, which is decided on its own if followed.
	req, _ := http.NewRequest("GET", base+"/repos/acme/../evil/widgets/issues", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 300 || resp.StatusCode >= 400 {
		t.Errorf("GET with a plain ..: %d, want a redirect", resp.StatusCode)
	}
	if n := len(tr.seen()); n != 0 {
		t.Fatalf("%d refused requests reached the upstream", n)
	}

	if a := call(t, "GET", base+"/repos/acme/a%3Fb/issues", token, ""); a.status != http.StatusOK {
		t.Fatalf("GET with an encoded ?: %d %s", a.status, a.body)
	}
	if seen := tr.seen(); len(seen) != 1 || seen[0].URL.EscapedPath() != "/repos/acme/a%3Fb/issues" || seen[0].URL.RawQuery != "" {
		t.Errorf("forwarded %v; want exactly /repos/acme/a%%3Fb/issues", seen)
	}
	auth := gatewaytest.OfType(w.Trace(t, taskID), "action.authorized")
	if len(auth) != 1 || auth[0].Data.Resource != "https://tracker.example/repos/acme/a%3Fb" {
		t.Errorf("authorized %+v; want one action for https://tracker.example/repos/acme/a%%3Fb", auth)
	}
}

// TestProxyRuleResources: a rule whose resource template cannot make a
// resource in normal form is refused when the proxy is built.
func TestProxyRuleResources(t *testing.T) {
	for _, res := range []string{"https://tracker.example/{owner}/../admin", "https://tracker.example/{owner}%2F{repo}", "tracker example"} {
		_, err := proxy.New(proxy.Config{Decider: (*task.Service)(nil),
			Auth: func(http.ResponseWriter, *http.Request) (task.VerifiedCredential, bool) {
				return task.VerifiedCredential{}, false
			},
			Upstreams: map[string]config.ProxyUpstream{"tracker": {URL: "https://tracker.example",
				Rules: []config.ProxyRule{{Method: "GET", Path: "/{owner}/{repo}", Tool: "t", Operation: "read", Resource: res}}}}})
		if err == nil || !strings.Contains(err.Error(), "rules[0].resource") {
			t.Errorf("resource template %q: %v; want an error naming the rule", res, err)
		}
	}
}
