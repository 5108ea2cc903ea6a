package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/notify"
	"github.com/writhq/writ/internal/server/servertest"
)

// TestApprovalWebhook opens a task that needs approval and checks the
// approvers' webhook receives it, signed with the configured secret.
func TestApprovalWebhook(t *testing.T) {
	secret := "approvers-webhook-secret-0123456789"
	got := make(chan notify.Notification, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !notify.Verify([]byte(secret), r.Header.Get(notify.TimestampHeader), body, r.Header.Get(notify.SignatureHeader)) {
			t.Errorf("notification with a bad signature: %s", body)
		}
		var n notify.Notification
		if err := json.Unmarshal(body, &n); err != nil {
			t.Errorf("notification is not JSON: %v", err)
		}
		got <- n
	}))
	defer hook.Close()

	dir := t.TempDir()
	secretFile := filepath.Join(dir, "webhook-secret")
	os.WriteFile(secretFile, []byte(secret), 0o600)
	cfg := servertest.Dev(filepath.Join(dir, "d"), "prod")
	cfg.Approvals.Webhook = config.WebhookConfig{URL: hook.URL, SecretFile: secretFile}
	srv := serve(t, cfg).srv

	tok, _ := identity.DevToken(cfg.DataDir, "alice", []identity.Role{identity.RoleRequester}, time.Hour, time.Now())
	body, _ := json.Marshal(api.OpenTask{
		Agent: "spiffe://writ.dev/agent/summarizer", Intent: "Summarize Q3 invoices",
		Scope: invoiceScope("prod"),
		TTL:   "15m",
	})
	a := do(t, "POST", "http://"+srv.Addr()+"/v1/tasks", tok, body)
	var opened api.TaskOpened
	if err := json.Unmarshal(a.body, &opened); err != nil || opened.State != api.StatePendingApproval {
		t.Fatalf("open: %d %s", a.status, a.body)
	}
	select {
	case n := <-got:
		b, _ := json.Marshal(n.Approval)
		var p api.PendingApproval
		json.Unmarshal(b, &p)
		if n.Event != "approval.requested" || p.TaskID != opened.TaskID || p.Requester == "" || p.Intent == "" || p.ApprovalsRequired != 1 {
			t.Errorf("notification %+v", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the webhook heard nothing")
	}
}
