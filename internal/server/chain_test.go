package server_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
)

// TestAppendRefusesTaskLinks: the ledger links a task's events itself; a
// link sent to POST /v1/ledger/events, alone or on an NDJSON line, is a 400
// naming it, and an imported event of a task gets the link the ledger
// gives it.
func TestAppendRefusesTaskLinks(t *testing.T) {
	ts := startServer(t, "")
	for _, body := range []string{
		`{"type":"import.siem.alert","task_id":"tsk_1","prev":0}`,
		`{"type":"import.siem.alert","task_id":"tsk_1","delegation":3}`,
	} {
		a := ts.post(t, "/v1/ledger/events", []byte(body))
		if a.status != http.StatusBadRequest {
			t.Fatalf("%s: status %d %s, want 400", body, a.status, a.body)
		}
		if e := apiError(t, a); e.Error != "invalid_event" || !strings.Contains(e.Detail, "the ledger links each task's events itself") {
			t.Errorf("%s: %+v", body, e)
		}
	}
	if code := ts.postNDJSON(t, "{\"type\":\"import.siem.alert\",\"task_id\":\"tsk_1\"}\n{\"type\":\"import.siem.alert\",\"task_id\":\"tsk_1\",\"prev\":0}\n"); code != http.StatusBadRequest {
		t.Errorf("NDJSON with a link: status %d, want 400", code)
	}
	for range 2 {
		if a := ts.post(t, "/v1/ledger/events", []byte(`{"type":"import.siem.alert","task_id":"tsk_1"}`)); a.status != http.StatusCreated {
			t.Fatalf("an import event: %d %s", a.status, a.body)
		}
	}
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	var idx []int
	for i, e := range readEvents(t, ts.dir) {
		if e.TaskID != "tsk_1" {
			continue
		}
		switch {
		case len(idx) == 0 && e.Prev != nil, len(idx) == 1 && (e.Prev == nil || int(*e.Prev) != idx[0]), len(idx) > 1:
			t.Errorf("event %d of tsk_1: prev %v after events %v", i, e.Prev, idx)
		}
		idx = append(idx, i)
	}
	if len(idx) != 2 {
		t.Errorf("%d events of tsk_1, want the 2 accepted", len(idx))
	}
}

// TestChainsAcrossReplicas: a task and its child whose events two replicas
// of one PostgreSQL database append in turn have whole chains: the ledger
// verifies, chains included, and either replica exports bundles that
// verify complete.
func TestChainsAcrossReplicas(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	a := startPostgres(t, postgresConfig(t, dsn, dir))
	cfg := postgresConfig(t, dsn, t.TempDir())
	replicaOf(t, &cfg, dir)
	b := startPostgres(t, cfg)

	alice := devTokenFor(t, a, "alice", identity.RoleRequester)
	var roots []string
	for i := range 6 {
		on, other := a, b
		if i%2 == 1 {
			on, other = b, a
		}
		root := openTask(t, on, alice, agentA, invoiceScope("dev"), nil)
		if a := other.post(t, "/v1/ledger/events", []byte(`{"type":"import.siem.alert","task_id":"`+root.TaskID+`"}`)); a.status != http.StatusCreated {
			t.Fatalf("import: %d %s", a.status, a.body)
		}
		child := openTask(t, other, alice, agentA, invoiceScope("dev"), &root.TaskID)
		if child.State != api.StateActive {
			t.Fatalf("child: %+v", child)
		}
		if a := on.post(t, "/v1/ledger/events", []byte(`{"type":"import.siem.alert","task_id":"`+child.TaskID+`"}`)); a.status != http.StatusCreated {
			t.Fatalf("import: %d %s", a.status, a.body)
		}
		if ans := do(t, "POST", other.url+"/v1/tasks/"+root.TaskID+"/complete", alice, nil); ans.status != http.StatusOK {
			t.Fatalf("complete on the other replica: %d %s", ans.status, ans.body)
		}
		roots = append(roots, root.TaskID)
	}
	rep := verifyPostgres(t, dsn)
	if rep.Tasks != 12 || rep.Links < 12*3 {
		t.Errorf("the ledger's chains: %d links of %d tasks", rep.Links, rep.Tasks)
	}
	for i, id := range roots {
		ts := []*testServer{a, b}[i%2]
		ans := do(t, "GET", ts.url+"/v1/tasks/"+id+"/evidence", ts.token, nil)
		if ans.status != http.StatusOK {
			t.Fatalf("export: %d %s", ans.status, ans.body)
		}
		r, err := evidence.Verify(bytes.NewReader(ans.body), int64(len(ans.body)), evidence.VerifyOptions{RequireComplete: true})
		if err != nil || !r.OK() || r.Completeness.Status != evidence.StatusComplete || len(r.Completeness.Tasks) != 2 {
			t.Errorf("bundle of %s: %v %+v", id, err, r)
		}
	}
}
