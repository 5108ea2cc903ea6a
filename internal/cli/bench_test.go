package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/server/servertest"
)

// startDevServer runs a dev server in prod on a free loopback port until
// the test ends, and returns its URL and data directory.
func startDevServer(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := identity.EnsureDevIssuer(dir); err != nil {
		t.Fatal(err)
	}
	return servertest.Start(t, servertest.Dev(dir, "prod")).URL, dir
}

// requesterToken returns a dev token of alice, a requester, from the dev
// issuer in dir.
func requesterToken(t *testing.T, dir string) string {
	t.Helper()
	tok, err := identity.DevToken(dir, "alice", []identity.Role{identity.RoleRequester}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// smallTask asks for a task the default policy lets a dev server open at
// once.
var smallTask = api.OpenTask{Agent: "spiffe://writ.dev/agent/a", Intent: "x",
	Scope: api.Scope{Tools: []string{"t"}, Resources: []string{"r"}, Operations: []string{"read"}, DataClass: "internal", Environments: []string{"dev"}}}

// postJSON posts body as JSON to url with a bearer token, and returns the
// answer's status and body.
func postJSON(t *testing.T, url, token string, body any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, answer
}

// TestBenchAuthorize runs a short, count-bounded load with half the calls
// out of scope, and checks that every request is accounted for.
func TestBenchAuthorize(t *testing.T) {
	url, dir := startDevServer(t)
	out, errs, code := runWrit(t, "bench", "authorize", "--server", url, "--setup", "--dev-data-dir", dir,
		"--concurrency", "4", "--requests", "200", "--duration", "30s", "--deny-percent", "50", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r benchReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.Requests != 200 || r.Allowed+r.Denied != 200 || len(r.Errors) != 0 {
		t.Errorf("requests %d, allowed %d, denied %d, errors %v; want 200 split between allowed and denied", r.Requests, r.Allowed, r.Denied, r.Errors)
	}
	if r.Allowed == 0 || r.Denied == 0 {
		t.Errorf("allowed %d, denied %d: want both with --deny-percent 50", r.Allowed, r.Denied)
	}
	if !(r.P50ms > 0 && r.P50ms <= r.P90ms && r.P90ms <= r.P99ms && r.P99ms <= r.MaxMs) {
		t.Errorf("percentiles out of order: %+v", r)
	}
	if !strings.Contains(errs, "bench task tsk_") {
		t.Errorf("stderr %q does not name the bench task", errs)
	}
}

// TestBenchRevokedToken checks that refusals are counted by status, not as
// allowed or denied.
func TestBenchRevokedToken(t *testing.T) {
	url, _ := startDevServer(t)
	out, errs, code := runWrit(t, "bench", "authorize", "--server", url, "--token", "not-a-token", "--requests", "5", "--duration", "10s", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r benchReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"401 invalid_token": 5}, r.Errors); diff != "" || r.Allowed != 0 {
		t.Errorf("allowed %d; errors (-want +got):\n%s", r.Allowed, diff)
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--concurrency", "0", "--token", "x"},
		{"--duration", "11m", "--token", "x"},
		{"--deny-percent", "101", "--token", "x"},
		{"--setup"},
	} {
		if _, _, code := runWrit(t, append([]string{"bench", "authorize"}, args...)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
