package console_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/identity"
)

// TestAccessPage: the standing-access report shows, per agent, the tools
// its tasks granted against those it used; only auditors and admins see it.
func TestAccessPage(t *testing.T) {
	ts := startServer(t, nil)
	alice := ts.api(t, "alice", identity.RoleRequester)
	task := ts.openApproved(t, alice, "Summarize Q3 invoices", "bob")
	agent := ts.agentFor(t, task.TaskID)
	if a, err := agent.Authorize(context.Background(), api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17", DataClass: "confidential"}); err != nil || !a.Allow {
		t.Fatalf("in-scope call: %+v %v", a, err)
	}

	b := newBrowserless(t, ts.url)
	b.signIn("dana", identity.RoleAuditor)
	p := b.get("/ui/access")
	if p.status != http.StatusOK {
		t.Fatalf("access page: %d\n%s", p.status, p.body)
	}
	row := p.body[strings.Index(p.body, `data-agent="`+testAgent+`"`):]
	row = row[:strings.Index(row, "</tr>")]
	// Granted invoices.* and mail.send; used invoices.read; mail.send unused.
	for _, want := range []string{"invoices.*, mail.send", "invoices.read", "1 / 0"} {
		if !strings.Contains(row, want) {
			t.Errorf("the agent's row lacks %q:\n%s", want, row)
		}
	}
	if p := b.get("/ui/access?from=2026-12-01&to=2026-11-01"); p.status != http.StatusBadRequest {
		t.Errorf("from after to: %d, want 400", p.status)
	}
	r := newBrowserless(t, ts.url)
	r.signIn("alice", identity.RoleRequester)
	if p := r.get("/ui/access"); p.status != http.StatusForbidden {
		t.Errorf("access page for a requester: %d, want 403", p.status)
	}
}
