package proxy_test

import (
	"strings"
	"testing"
)

// TestProxyRedaction: a secret in a proxied request's query or body, and
// in what the upstream answers, is redacted in every body writ records.
func TestProxyRedaction(t *testing.T) {
	w, _ := startProxy(t, "")
	_, token := w.TaskToken(t, issuesScope)
	base := w.URL + "/proxy/tracker"
	if a := call(t, "GET", base+"/repos/acme/widgets/issues?page=2&api_key=q-secret-1", token, ""); a.status != 200 {
		t.Fatalf("GET: %d %s", a.status, a.body)
	}
	// The upstream echoes the body: the secret is in the output too.
	if a := call(t, "POST", base+"/repos/acme/widgets/issues", token, `{"title":"bug","auth":{"Token":"b-secret-2"}}`); a.status != 201 || !strings.Contains(a.body, "b-secret-2") {
		t.Fatalf("POST: %d %s (the agent gets the answer as it is)", a.status, a.body)
	}
	n := 0
	for _, name := range []string{"arguments", "input", "output"} {
		for idx, b := range w.Bodies(t, name) {
			n++
			for _, s := range []string{"q-secret-1", "b-secret-2"} {
				if strings.Contains(string(b), s) {
					t.Errorf("body %s of event %d holds %s: %s", name, idx, s, b)
				}
			}
		}
	}
	if n < 6 {
		t.Errorf("%d bodies recorded, want at least 6", n)
	}
}
