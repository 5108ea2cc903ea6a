package server_test

import (
	"bytes"
	"database/sql"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/query"
	"github.com/writhq/writ/internal/server/servertest"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
	"github.com/writhq/writ/internal/store/sqlite"
	"github.com/writhq/writ/internal/testkit"
)

func TestEvidenceAndQueryAPI(t *testing.T) {
	ts, tok := startTaskServer(t, "prod")
	opened := openKB(t, ts, tok["alice"], "prod")
	evURL := ts.url + "/v1/tasks/" + opened.TaskID + "/evidence"

	// The bundle: for auditors, admins and the task's requester.
	for _, who := range []string{"auditor", "admin", "alice"} {
		a := do(t, "GET", evURL, tok[who], nil)
		if a.status != http.StatusOK || a.header.Get("Content-Type") != "application/zip" {
			t.Fatalf("%s: %d %s", who, a.status, a.body)
		}
		r, err := evidence.Verify(bytes.NewReader(a.body), int64(len(a.body)), evidence.VerifyOptions{})
		if err != nil || !r.OK() {
			t.Fatalf("%s's bundle does not verify: %+v %v", who, r, err)
		}
	}
	wantError(t, do(t, "GET", evURL, tok["mallory"], nil), http.StatusNotFound, "not_found")
	if a := do(t, "GET", evURL, tok["bob"], nil); a.status != http.StatusForbidden {
		t.Errorf("an approver exports: %d", a.status)
	}
	wantError(t, do(t, "GET", evURL+"?from=yesterday", tok["auditor"], nil), http.StatusBadRequest, "invalid_request")
	wantError(t, do(t, "GET", ts.url+"/v1/tasks/tsk_nope/evidence", tok["auditor"], nil), http.StatusNotFound, "not_found")

	// Queries: auditors and admins only; bad input is a 400.
	q := ts.url + "/v1/events?" + url.Values{"task_id": {opened.TaskID}}.Encode()
	p := decodeAs[query.Page](t, do(t, "GET", q, tok["auditor"], nil))
	if len(p.Events) < 3 || p.Events[0].Type != "task.requested" {
		t.Errorf("events of the task: %+v", p.Events)
	}
	if a := do(t, "GET", q, tok["alice"], nil); a.status != http.StatusForbidden {
		t.Errorf("a requester queries events: %d", a.status)
	}
	for _, bad := range []string{"limit=0x", "limit=5000", "after=x", "from=x", "task_id=a&task_id=b", "tool=" + strings.Repeat("a", 2000)} {
		wantError(t, do(t, "GET", ts.url+"/v1/events?"+bad, tok["auditor"], nil), http.StatusBadRequest, "invalid_request")
	}
	wantError(t, do(t, "GET", ts.url+"/v1/reports/approvals", tok["auditor"], nil), http.StatusBadRequest, "invalid_request")
	wantError(t, do(t, "GET", ts.url+"/v1/reports/active", tok["auditor"], nil), http.StatusBadRequest, "invalid_request")
	wantError(t, do(t, "GET", ts.url+"/v1/reports/access?long_ttl=-1h", tok["auditor"], nil), http.StatusBadRequest, "invalid_request")

	act := decodeAs[query.Access](t, do(t, "GET", ts.url+"/v1/reports/active?at="+url.QueryEscape(time.Now().Format(time.RFC3339Nano)), tok["admin"], nil))
	if len(act.Tasks) != 1 || act.Tasks[0].TaskID != opened.TaskID {
		t.Errorf("active now: %+v", act)
	}
	rep := decodeAs[evidence.AccessReport](t, do(t, "GET", ts.url+"/v1/reports/access", tok["auditor"], nil))
	if len(rep.Agents) != 1 || rep.Agents[0].Tasks != 1 {
		t.Errorf("access report: %+v", rep)
	}
}

// TestEvidenceOnPostgresReplicas: two servers on one PostgreSQL database,
// each with a query index of its own in its data directory (the default)
// or both sharing one in the database; either way either answers queries
// about events the other recorded, and exports bundles that verify.
func TestEvidenceOnPostgresReplicas(t *testing.T) {
	for _, mode := range []string{config.QueryIndexLocal, config.QueryIndexShared} {
		t.Run(mode, func(t *testing.T) {
			dsn := pgtest.DSN(t)
			a, b := startReplicas(t, dsn, func(c *config.Config) { c.QueryIndex = mode })

			alice := devTokenFor(t, a, "alice", identity.RoleRequester)
			opened := openTask(t, a, alice, agentA, invoiceScope("dev"), nil)
			bob := devTokenFor(t, b, "bob", identity.RoleRequester)
			other := openTask(t, b, bob, agentA, invoiceScope("dev"), nil)
			for _, ts := range []*testServer{a, b} {
				for _, id := range []string{opened.TaskID, other.TaskID} {
					p := decodeAs[query.Page](t, do(t, "GET", ts.url+"/v1/events?task_id="+id, ts.token, nil))
					if len(p.Events) < 3 {
						t.Errorf("%s: events of task %s: %+v", ts.url, id, p.Events)
					}
				}
				ans := do(t, "GET", ts.url+"/v1/tasks/"+opened.TaskID+"/evidence", ts.token, nil)
				if ans.status != http.StatusOK {
					t.Fatalf("%s: export: %d %s", ts.url, ans.status, ans.body)
				}
				r, err := evidence.Verify(bytes.NewReader(ans.body), int64(len(ans.body)), evidence.VerifyOptions{})
				if err != nil || !r.OK() {
					t.Errorf("%s: bundle: %+v %v", ts.url, r, err)
				}
			}
			// The index is where the setting says, and only there.
			db, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var inDB bool
			if err := db.QueryRow(`SELECT to_regclass('query_events') IS NOT NULL`).Scan(&inDB); err != nil {
				t.Fatal(err)
			}
			for _, ts := range []*testServer{a, b} {
				_, err := os.Stat(filepath.Join(ts.dir, query.SQLiteFile))
				if local := err == nil; local != (mode == config.QueryIndexLocal) {
					t.Errorf("%s: %s in the data directory: %v", mode, query.SQLiteFile, local)
				}
			}
			if inDB != (mode == config.QueryIndexShared) {
				t.Errorf("%s: query_events in the database: %v", mode, inDB)
			}
			// A replica keeping its own index beside a shared one says so.
			cfg := postgresConfig(t, dsn, t.TempDir())
			replicaOf(t, &cfg, a.dir)
			var logs testkit.Buffer
			servertest.StartLogged(t, cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
			if warned := strings.Contains(logs.String(), "the database holds a shared one"); warned != inDB {
				t.Errorf("%s: a local replica warned of the shared index: %v", mode, warned)
			}
		})
	}
}

// TestQueryIndexHasItsOwnFile: on SQLite the query index is kept in a
// database of its own beside the ledger's, so its writes never take the
// lock the ledger commits under.
func TestQueryIndexHasItsOwnFile(t *testing.T) {
	ts, tok := startTaskServer(t, "prod")
	openKB(t, ts, tok["alice"], "prod")
	p := decodeAs[query.Page](t, do(t, "GET", ts.url+"/v1/events", tok["auditor"], nil))
	if len(p.Events) == 0 {
		t.Fatal("no events indexed")
	}
	count := func(file, table string) int {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+filepath.Join(ts.dir, file)+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count(query.SQLiteFile, "query_events") != 1 {
		t.Errorf("%s has no query_events table", query.SQLiteFile)
	}
	if count(sqlite.FileName, "query_events") != 0 {
		t.Errorf("the ledger's database holds the query index")
	}
}
