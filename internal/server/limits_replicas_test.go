package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
)

// startThreeReplicas starts three replicas on one PostgreSQL schema.
func startThreeReplicas(t *testing.T, dsn string) []*testServer {
	t.Helper()
	a, b := startReplicas(t, dsn, nil)
	cfg := postgresConfig(t, dsn, t.TempDir())
	replicaOf(t, &cfg, a.dir)
	return []*testServer{a, b, startPostgres(t, cfg)}
}

// TestLimitsAcrossReplicas: 20 concurrent calls spread over three
// replicas, against a budget of 10, let exactly 10 through, and each
// refusal names the limit.
func TestLimitsAcrossReplicas(t *testing.T) {
	dsn := pgtest.DSN(t)
	rs := startThreeReplicas(t, dsn)
	alice := devTokenFor(t, rs[0], "alice", identity.RoleRequester)
	scope := invoiceScope("dev")
	ten := int64(10)
	scope.Limits = &api.Limits{Calls: &ten}
	opened := openTask(t, rs[0], alice, agentA, scope, nil)
	bearer := "Bearer " + tokenOf(t, exchange(t, rs[0], exchangeForm(svid(t, rs[0], agentA), opened.TaskID), "")).AccessToken
	in := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17"}

	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed, refused := 0, 0
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ans := authorize(t, rs[i%3], bearer, "", in)
			var got api.Authorized
			json.Unmarshal(ans.body, &got)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case ans.status == http.StatusOK && got.Allow:
				allowed++
			case ans.status == http.StatusForbidden && len(got.Reasons) == 1 && strings.Contains(got.Reasons[0], "limits.calls (10 calls) is reached"):
				refused++
			default:
				t.Errorf("call %d on replica %d: %d %s", i, i%3, ans.status, ans.body)
			}
		}()
	}
	wg.Wait()
	if allowed != 10 || refused != 10 {
		t.Fatalf("%d allowed and %d refused across three replicas, want 10 and 10", allowed, refused)
	}
	verifyPostgres(t, dsn)
}

// TestHistoryAcrossReplicas: a call answered on one replica is in the
// history of the next call on another, at once: a send after a
// confidential read asks for a step-up wherever it lands.
func TestHistoryAcrossReplicas(t *testing.T) {
	dsn := pgtest.DSN(t)
	rs := startThreeReplicas(t, dsn)
	alice := devTokenFor(t, rs[0], "alice", identity.RoleRequester)
	scope := api.Scope{Tools: []string{"invoices.*", "mail.send"}, Resources: []string{"erp://invoices/2026-Q3/*", "mail://finance"},
		Operations: []string{"read", "send"}, DataClass: "confidential", Environments: []string{"dev"}}
	// Calls of another task keep every replica busy, so that none takes
	// the decision lock afresh (and catches up) for the calls under test.
	busy := openTask(t, rs[0], alice, agentB, invoiceScope("dev"), nil)
	busyBearer := "Bearer " + tokenOf(t, exchange(t, rs[0], exchangeForm(svid(t, rs[0], agentB), busy.TaskID), "")).AccessToken
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				authorize(t, rs[i%3], busyBearer, "", api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/1"})
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	for i := range 10 {
		opened := openTask(t, rs[0], alice, agentA, scope, nil)
		bearer := "Bearer " + tokenOf(t, exchange(t, rs[0], exchangeForm(svid(t, rs[0], agentA), opened.TaskID), "")).AccessToken
		read := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17", DataClass: "confidential"}
		if ans := authorize(t, rs[(i+1)%3], bearer, "", read); ans.status != http.StatusOK {
			t.Fatalf("read %d: %d %s", i, ans.status, ans.body)
		}
		send := api.Authorize{Tool: "mail.send", Operation: "send", Resource: "mail://finance", DataClass: "internal"}
		got := decodeAs[api.Authorized](t, authorize(t, rs[(i+2)%3], bearer, "", send))
		if got.Allow || !got.ApprovalRequired {
			t.Fatalf("send %d on another replica after the confidential read: %+v", i, got)
		}
	}
}
