package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/identity"
)

// TestLegalHoldButtons: an auditor places and lifts a task's legal hold
// from its page; a requester sees no such button and may not post one.
func TestLegalHoldButtons(t *testing.T) {
	ts := startServer(t, nil)
	alice := ts.api(t, "alice", identity.RoleRequester)
	task := ts.openPending(t, alice, "Summarize Q3 invoices")
	path := "/ui/tasks/" + task.TaskID

	ab := newBrowserless(t, ts.url)
	ab.signIn("alice", identity.RoleRequester)
	if p := ab.get(path); strings.Contains(p.body, `id="hold"`) {
		t.Error("a requester is offered the legal hold")
	}
	if p := ab.post(path+"/hold", url.Values{"reason": {"x"}}, true); p.status != http.StatusForbidden {
		t.Errorf("a requester posts a hold: %d", p.status)
	}

	b := newBrowserless(t, ts.url)
	b.signIn("audrey", identity.RoleAuditor)
	if p := b.get(path); !strings.Contains(p.body, `id="hold"`) {
		t.Fatalf("the auditor is not offered the legal hold:\n%s", p.body)
	}
	if p := b.post(path+"/hold", url.Values{"reason": {"litigation 2026-14"}}, true); p.status != http.StatusSeeOther {
		t.Fatalf("hold: %d\n%s", p.status, p.body)
	}
	p := b.get(path)
	if !strings.Contains(p.body, `id="legal-hold"`) || !strings.Contains(p.body, "litigation 2026-14") || !strings.Contains(p.body, `id="release"`) ||
		!strings.Contains(p.body, `data-type="task.held"`) {
		t.Fatalf("the held task's page:\n%s", p.body)
	}
	got, err := alice.GetTask(context.Background(), task.TaskID)
	if err != nil || got.Hold == nil || got.Hold.Reason != "litigation 2026-14" {
		t.Fatalf("the task after the hold: %+v %v", got.Hold, err)
	}
	if p := b.post(path+"/release", url.Values{"reason": {"case closed"}}, true); p.status != http.StatusSeeOther {
		t.Fatalf("release: %d\n%s", p.status, p.body)
	}
	if p := b.get(path); strings.Contains(p.body, `id="legal-hold"`) || !strings.Contains(p.body, `id="hold"`) {
		t.Errorf("the page after the release still shows the hold")
	}
}
