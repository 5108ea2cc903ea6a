package server_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/store/sqlite"
)

// TestReadinessAfterStoreDeleted: with writ.db deleted under the running
// server, /readyz answers 503 and no write is acknowledged (appends and
// task decisions answer 503), however often it is tried.
func TestReadinessAfterStoreDeleted(t *testing.T) {
	ts := startServer(t, "")
	if a := ts.get(t, "/readyz"); a.status != http.StatusOK {
		t.Fatalf("/readyz before: %d %s", a.status, a.body)
	}
	if a := ts.post(t, "/v1/ledger/events", []byte(`{"type":"import.before"}`)); a.status != http.StatusCreated {
		t.Fatalf("append before: %d %s", a.status, a.body)
	}
	if err := os.Remove(filepath.Join(ts.dir, sqlite.FileName)); err != nil {
		t.Fatal(err)
	}
	alice := devTokenFor(t, ts, "alice", identity.RoleRequester)
	for i := range 3 {
		if a := ts.post(t, "/v1/ledger/events", []byte(`{"type":"import.after"}`)); a.status != http.StatusServiceUnavailable {
			t.Errorf("append %d after the deletion: %d %s, want 503", i, a.status, a.body)
		}
		a := do(t, "POST", ts.url+"/v1/tasks", alice, mustJSON(t, struct {
			Agent  string `json:"agent"`
			Intent string `json:"intent"`
			Scope  any    `json:"scope"`
		}{agentA, "x", invoiceScope("dev")}))
		if a.status != http.StatusServiceUnavailable {
			t.Errorf("opening a task after the deletion: %d %s, want 503", a.status, a.body)
		}
		a = ts.get(t, "/readyz")
		if e := apiError(t, a); a.status != http.StatusServiceUnavailable || e.Error != "store_unavailable" {
			t.Errorf("/readyz after the deletion: %d %s", a.status, a.body)
		}
	}
}
