package console_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/testkit"
)

// TestEvidenceDownload: the task page offers the bundle to its requester,
// the bundle verifies offline, and others may not download it.
func TestEvidenceDownload(t *testing.T) {
	ts := startServer(t, nil)
	alice := ts.api(t, "alice", identity.RoleRequester)
	task := ts.openApproved(t, alice, "Summarize Q3 invoices", "bob")
	b := newBrowserless(t, ts.url)
	b.signIn("alice", identity.RoleRequester)
	if p := b.get("/ui/tasks/" + task.TaskID); !strings.Contains(p.body, `id="evidence"`) {
		t.Fatal("the task page offers no evidence download to its requester")
	}
	var p page
	// 503 until a checkpoint covers the newest event; the checks below
	// say what the last answer was.
	testkit.Poll(10*time.Second, func() error {
		p = b.get("/ui/tasks/" + task.TaskID + "/evidence")
		if p.status == http.StatusServiceUnavailable {
			return errors.New("no checkpoint covers the task yet")
		}
		return nil
	})
	if p.status != http.StatusOK || p.header.Get("Content-Type") != "application/zip" ||
		!strings.Contains(p.header.Get("Content-Disposition"), task.TaskID+".evidence.zip") {
		t.Fatalf("evidence download: %d %s %s", p.status, p.header.Get("Content-Type"), p.header.Get("Content-Disposition"))
	}
	rep, err := evidence.Verify(bytes.NewReader([]byte(p.body)), int64(len(p.body)), evidence.VerifyOptions{})
	if err != nil || !rep.OK() || rep.TaskID != task.TaskID {
		t.Fatalf("downloaded bundle: %+v %v", rep, err)
	}

	other := newBrowserless(t, ts.url)
	other.signIn("zed", identity.RoleRequester)
	if p := other.get("/ui/tasks/" + task.TaskID); strings.Contains(p.body, `id="evidence"`) {
		t.Error("another requester is offered the evidence bundle")
	}
	if p := other.get("/ui/tasks/" + task.TaskID + "/evidence"); p.status != http.StatusNotFound {
		t.Errorf("another requester downloads the bundle: %d, want 404 (the task is not theirs to see)", p.status)
	}
}
