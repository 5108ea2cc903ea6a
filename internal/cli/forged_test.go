package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/server/servertest"
)

// TestForgedEventNeitherBricksNorPasses: a ledger holding writ events that
// writ never wrote (appended straight through the ledger package, as an
// append API that took any type once allowed) still starts a server, which
// skips them, reports them on /readyz and serves; `writ ledger verify`
// names each one and fails, distinctly from a broken tree; and the evidence
// bundle of the task one of them names fails verification at its index.
func TestForgedEventNeitherBricksNorPasses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := servertest.Dev(dir, "dev")
	srv := servertest.Start(t, cfg)
	alice := requesterToken(t, dir)
	openTask := func(url string) api.TaskOpened {
		status, body := postJSON(t, url+"/v1/tasks", alice, smallTask)
		var out api.TaskOpened
		if status != http.StatusCreated || json.Unmarshal(body, &out) != nil || out.State != "active" {
			t.Fatalf("opening a task: %d %s", status, body)
		}
		return out
	}
	opened := openTask(srv.URL)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}

	// Forge, behind writ's back: an approval of the (active, never
	// pending) task, and the completion of a task that never existed.
	l, closeLedger, err := openLocal(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	first, err := l.AppendAll(ctx, []ledger.Event{
		{Type: ledger.TypeApprovalGranted, TaskID: opened.TaskID, Principal: "mallory", Data: json.RawMessage(`{"approval_id":"apr_forged","kind":"task","approver":"mallory"}`)},
		{Type: ledger.TypeTaskCompleted, TaskID: "tsk_never", Principal: "mallory", Data: json.RawMessage(`{"reason":"forged"}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := closeLedger(); err != nil {
		t.Fatal(err)
	}
	forged := []uint64{first, first + 1}

	// The server starts, says so on /readyz and serves.
	srv = servertest.Start(t, cfg)
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Status    string `json:"status"`
		Unapplied int    `json:"unapplied_events"`
	}
	json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || ready.Unapplied != 2 {
		t.Errorf("/readyz = %d %+v, want 200 with unapplied_events 2", resp.StatusCode, ready)
	}
	openTask(srv.URL)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}

	// verify names both, and says the log itself is whole.
	out, errs, code := runWrit(t, "ledger", "verify", "--data-dir", dir)
	if code == 0 || !strings.Contains(out, "FAIL task state") || strings.Contains(out, "FAIL tree") ||
		!strings.Contains(errs, "the log is whole and signed") {
		t.Errorf("verify: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, i := range forged {
		if !strings.Contains(out, fmt.Sprintf("task state: event %d (", i)) {
			t.Errorf("verify does not name forged event %d:\n%s", i, out)
		}
	}
	out, _, _ = runWrit(t, "ledger", "verify", "--data-dir", dir, "-o", "json")
	var rep struct {
		OK        bool `json:"ok"`
		Unapplied []struct {
			Index  uint64 `json:"index"`
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"unapplied_events"`
		Failures []any `json:"failures"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.OK || len(rep.Failures) != 0 || len(rep.Unapplied) != 2 ||
		rep.Unapplied[0].Index != forged[0] || rep.Unapplied[0].Type != ledger.TypeApprovalGranted || rep.Unapplied[0].Reason == "" {
		t.Errorf("verify -o json: %v\n%s", err, out)
	}

	// The task's evidence bundle carries the forged approval, and its
	// verification fails naming it.
	bundle := filepath.Join(t.TempDir(), "b.zip")
	if out, errs, code := runWrit(t, "export", opened.TaskID, "--data-dir", dir, "--out", bundle); code != 0 {
		t.Fatalf("export: code %d\n%s%s", code, out, errs)
	}
	out, errs, code = runWrit(t, "verify", bundle)
	if code == 0 || !strings.Contains(out+errs, fmt.Sprintf("event %d does not follow", forged[0])) {
		t.Errorf("verify of the bundle: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}
