package server_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
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
	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/server/servertest"
	"github.com/writhq/writ/internal/testkit"
)

// TestRedactionEverywhere authorizes a call whose arguments hold secrets
// at depth, in an array, under a case variant and as a GitHub token under
// an innocent key, records a result holding secrets, and asks for a
// step-up with the same arguments; then checks that none of the secrets
// is in the store's leaves or bodies, an exported bundle, the console's
// task page, the approvers' webhook or the server's log.
func TestRedactionEverywhere(t *testing.T) {
	ghp := "ghp_" + strings.Repeat("R3d4", 9)
	jwt := "eyJhbGciOiJFZERTQSJ9" + ".eyJzdWIiOiJib2IifQ" + ".c2lnbmF0dXJl"
	args := `{"nested":{"password":"hunter2"},"api_key":"k-123","list":[{"token":"t-1"}],"Password":"P","note":"` + ghp + `"}`
	output := `{"rows":[{"id":1,"client_secret":"cs-out-9"}],"text":"session ` + jwt + ` ok","headers":{"Set-Cookie":"sid=c00kie-v4l"}}`
	secrets := []string{"hunter2", "k-123", "t-1", `"P"`, ghp, "cs-out-9", jwt, "c00kie-v4l"}

	var hookMu sync.Mutex
	var hookBodies [][]byte
	heard := make(chan struct{}, 8)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		hookBodies = append(hookBodies, b)
		hookMu.Unlock()
		heard <- struct{}{}
	}))
	defer hook.Close()

	dir := t.TempDir()
	secretFile := filepath.Join(dir, "webhook-secret")
	os.WriteFile(secretFile, []byte("approvers-webhook-secret-0123456789"), 0o600)
	cfg := servertest.Dev(filepath.Join(dir, "d"), "dev")
	cfg.Approvals.Webhook = config.WebhookConfig{URL: hook.URL, SecretFile: secretFile}
	var logBuf testkit.Buffer
	srv := servertest.StartLogged(t, cfg, slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx := context.Background()

	reqTok, _ := identity.DevToken(cfg.DataDir, "alice", []identity.Role{identity.RoleRequester}, time.Hour, time.Now())
	agentID := "spiffe://" + identity.DevTrustDomain + "/agent/summarizer"
	opened, err := client.New(srv.URL, reqTok).OpenTask(ctx, api.OpenTask{Agent: agentID, Intent: "Summarize Q3 invoices", TTL: "15m",
		Scope: api.Scope{Tools: []string{"invoices.*"}, Resources: []string{"erp://invoices/2026-Q3/*"},
			Operations: []string{"read"}, DataClass: "internal", Environments: []string{"dev"}}})
	if err != nil || opened.State != api.StateActive {
		t.Fatalf("open: %+v %v", opened, err)
	}
	svid, _ := identity.DevSVID(cfg.DataDir, agentID, []string{"writ"}, 5*time.Minute, time.Now())
	base := client.New(srv.URL, "")
	tok, err := base.ExchangeToken(ctx, svid, opened.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	agent := base.WithToken(tok.AccessToken)
	a, err := agent.Authorize(ctx, api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17",
		Arguments: json.RawMessage(args), DataClass: "internal"})
	if err != nil || !a.Allow {
		t.Fatalf("authorize: %+v %v", a, err)
	}
	if _, err := agent.RecordResult(ctx, a.ActionID, api.ActionResult{Status: "ok", Output: json.RawMessage(output)}); err != nil {
		t.Fatal(err)
	}
	step, err := agent.Authorize(ctx, api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2025-Q4/3",
		Arguments: json.RawMessage(args), DataClass: "internal"})
	if err != nil || !step.ApprovalRequired {
		t.Fatalf("step-up: %+v %v", step, err)
	}
	select {
	case <-heard:
	case <-time.After(10 * time.Second):
		t.Fatal("the approvers' webhook heard nothing")
	}

	check := func(what string, b []byte) {
		t.Helper()
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %s", what, s)
			}
		}
	}

	// The console's task page, as an approver who sees the pending
	// step-up's arguments, and an auditor who sees the timeline.
	page := consolePage(t, srv.URL, "/ui/tasks/"+opened.TaskID, identity.RoleApprover, identity.RoleAuditor)
	if !strings.Contains(page, "[redacted]") {
		t.Errorf("the task page shows no redacted arguments:\n%s", page)
	}
	check("console task page", []byte(page))

	// The evidence bundle, every file in it.
	audTok, _ := identity.DevToken(cfg.DataDir, "audrey", []identity.Role{identity.RoleAuditor}, time.Hour, time.Now())
	bundle := do(t, http.MethodGet, srv.URL+"/v1/tasks/"+opened.TaskID+"/evidence", audTok, nil)
	if bundle.status != http.StatusOK {
		t.Fatalf("evidence: %d %s", bundle.status, bundle.body)
	}
	zr, err := zip.NewReader(bytes.NewReader(bundle.body), int64(len(bundle.body)))
	if err != nil {
		t.Fatal(err)
	}
	disclosed := false
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		check("bundle file "+f.Name, b)
		disclosed = disclosed || bytes.Contains(b, []byte(`list[0].token`))
	}
	if !disclosed {
		t.Error("the bundle does not say which paths were redacted")
	}

	hookMu.Lock()
	for _, b := range hookBodies {
		check("webhook notification", b)
	}
	hookMu.Unlock()

	// The store: every leaf and every body.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	check("server log", logBuf.Bytes())
	d, err := datadir.Open(ctx, cfg.DataDir, datadir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	size, _ := d.Store.Size(ctx)
	leaves, err := d.Store.ReadLeaves(ctx, 0, size)
	if err != nil || uint64(len(leaves)) != size {
		t.Fatalf("%d of %d leaves: %v", len(leaves), size, err)
	}
	for i, l := range leaves {
		check(fmt.Sprintf("leaf %d", i), l)
	}
	bodies := 0
	d.Store.ScanBodies(ctx, func(b ledger.Body) error {
		bodies++
		check("body "+b.Name, b.Data)
		return nil
	})
	if bodies < 5 {
		t.Errorf("%d bodies stored, want the arguments, input, output and step-up bodies", bodies)
	}
}

// consolePage signs in to the console through the dev form and returns a
// page.
func consolePage(t *testing.T, base, path string, roles ...identity.Role) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(p string) string {
		resp, err := c.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", p, resp.StatusCode)
		}
		return string(b)
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(get("/ui/login"))
	if m == nil {
		t.Fatal("no CSRF token on the sign-in page")
	}
	form := url.Values{"person": {"olivia"}, "csrf": {m[1]}}
	for _, r := range roles {
		form.Add("role", string(r))
	}
	resp, err := c.PostForm(base+"/ui/login/dev", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("dev sign-in: %d", resp.StatusCode)
	}
	return get(path)
}
