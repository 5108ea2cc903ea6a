package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
)

// TestAppendRefusesWritsOwnTypes: POST /v1/ledger/events takes import.*
// events only. One of writ's own types, alone or on a line of an NDJSON
// batch, is a 400 naming the type and the rule, and nothing is appended.
func TestAppendRefusesWritsOwnTypes(t *testing.T) {
	ts := startServer(t, "")
	for _, typ := range ledger.Types() {
		a := ts.post(t, "/v1/ledger/events", []byte(`{"type":"`+typ+`","task_id":"tsk_1","data":{}}`))
		if a.status != http.StatusBadRequest {
			t.Fatalf("%s: status %d %s, want 400", typ, a.status, a.body)
		}
		e := apiError(t, a)
		if e.Error != "invalid_event" || !strings.Contains(e.Detail, `"`+typ+`"`) || !strings.Contains(e.Detail, `"import."`) {
			t.Errorf("%s: %+v, want invalid_event naming the type and the import rule", typ, e)
		}
	}
	if code := ts.postNDJSON(t, "{\"type\":\"import.siem.alert\"}\n{\"type\":\"credential.issued\",\"jti\":\"j\"}\n"); code != http.StatusBadRequest {
		t.Errorf("NDJSON with a writ type: status %d, want 400", code)
	}
	if a := ts.post(t, "/v1/ledger/events", []byte(`{"type":"import.siem.alert"}`)); a.status != http.StatusCreated {
		t.Errorf("an import event: %d %s", a.status, a.body)
	}
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	imports := 0
	for i, e := range readEvents(t, ts.dir) {
		switch {
		case e.Principal != "" || e.TaskID == "tsk_1" || e.JTI == "j":
			t.Errorf("a refused append left event %d (%s) in the ledger", i, e.Type)
		case strings.HasPrefix(e.Type, ledger.ImportPrefix):
			imports++
		}
	}
	if imports != 1 {
		t.Errorf("%d import events in the ledger, want 1", imports)
	}
}

// TestReplicaSkipsForgedEvent: an event another writer put in a shared
// ledger that the task state cannot apply does not stall a replica's
// follower: the replica skips it, reports it on /readyz and goes on
// deciding.
func TestReplicaSkipsForgedEvent(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	a := startPostgres(t, postgresConfig(t, dsn, dir))
	alice := devTokenFor(t, a, "alice", identity.RoleRequester)
	opened := openTask(t, a, alice, agentA, invoiceScope("dev"), nil)

	// A writer of its own on the same database, with the replicas' key,
	// appends what writ never would: a second activation of the task.
	ctx := context.Background()
	d, err := datadir.Open(ctx, t.TempDir(), datadir.Options{Write: true, Store: datadir.StorePostgres, DSN: dsn,
		KeyFile: filepath.Join(dir, ledger.KeyFile)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.New(ctx, ledger.Config{Store: d.Store, Signer: d.Signer})
	if err != nil {
		t.Fatal(err)
	}
	forged, err := l.Append(ctx, ledger.Event{Type: ledger.TypeTaskActivated, TaskID: opened.TaskID, Principal: "mallory",
		Data: json.RawMessage(`{"expires_at":"2099-01-01T00:00:00Z"}`)})
	if err != nil {
		t.Fatal(err)
	}
	l.Close(ctx)
	d.Close()

	// Opening a task catches the replica up first.
	openTask(t, a, alice, agentA, invoiceScope("dev"), nil)
	ans := a.get(t, "/readyz")
	var ready struct {
		Unapplied int `json:"unapplied_events"`
	}
	if err := json.Unmarshal(ans.body, &ready); err != nil || ans.status != http.StatusOK || ready.Unapplied != 1 {
		t.Errorf("/readyz after the forged event %d: %d %s", forged, ans.status, ans.body)
	}
}
