package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/server/servertest"
)

// TestLedgerVerifyCatchesProjectionEdit revokes a task on a real server,
// sets it back to active in the tasks table behind writ's back, and checks
// that `writ ledger verify` fails naming the row and `writ server` refuses
// to start unless told to repair.
func TestLedgerVerifyCatchesProjectionEdit(t *testing.T) {
	dir := t.TempDir()
	srv := servertest.Start(t, servertest.Dev(dir, "dev"))
	alice := requesterToken(t, dir)
	call := func(path string, body any) []byte {
		status, out := postJSON(t, srv.URL+path, alice, body)
		if status >= 300 {
			t.Fatalf("POST %s: %d %s", path, status, out)
		}
		return out
	}
	var opened api.TaskOpened
	json.Unmarshal(call("/v1/tasks", smallTask), &opened)
	call("/v1/tasks/"+opened.TaskID+"/revoke", map[string]string{"reason": "test"})
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}

	if out, errs, code := runWrit(t, "ledger", "verify", "--data-dir", dir); code != 0 || !strings.Contains(out, "ok   projections") {
		t.Fatalf("verify before the edit: code %d\n%s%s", code, out, errs)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "writ.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE tasks SET state = 'active' WHERE task_id = ?`, opened.TaskID); err != nil {
		t.Fatal(err)
	}
	db.Close()

	out, errs, code := runWrit(t, "ledger", "verify", "--data-dir", dir)
	if code == 0 || !strings.Contains(out, "FAIL projections") || !strings.Contains(out, opened.TaskID) ||
		!strings.Contains(errs, "--repair-projections") {
		t.Errorf("verify after the edit: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	out, _, _ = runWrit(t, "ledger", "verify", "--data-dir", dir, "-o", "json")
	var rep struct {
		OK          bool     `json:"ok"`
		Projections []string `json:"projection_mismatches"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.OK || len(rep.Projections) == 0 {
		t.Errorf("verify -o json: %v %+v", err, rep)
	}

	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	var sout, serr strings.Builder
	code = Main(sctx, []string{"server", "--dev", "--data-dir", dir, "--listen", "127.0.0.1:0"},
		IO{Stdin: strings.NewReader(""), Stdout: &sout, Stderr: &serr, Getenv: func(string) string { return "" }})
	if code == 0 || !strings.Contains(serr.String(), "disagree with the ledger") || !strings.Contains(serr.String(), "writ: hint:") {
		t.Errorf("server on the edited store: code %d, stderr %q", code, serr.String())
	}
}
