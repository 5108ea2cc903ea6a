package gateway_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/gateway"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
	"github.com/writhq/writ/internal/testkit"
	"github.com/writhq/writ/internal/version"
)

// sessionScope lets a task call every tool of servers up and shared.
var sessionScope = api.Scope{Tools: []string{"up.*", "shared.*"}, Resources: []string{"mcp://up/tools/*", "mcp://shared/tools/*"},
	Operations: []string{"call"}, DataClass: "internal", Environments: []string{"dev"}}

// upstreamSession asks the upstream, through writ, which of its sessions
// the call arrived in.
func upstreamSession(t *testing.T, cs *mcp.ClientSession) string {
	t.Helper()
	res, err := callErr(t, cs, "session", map[string]any{})
	if err != nil || res.IsError {
		t.Fatalf("session: %v %+v", err, res)
	}
	id := res.Content[0].(*mcp.TextContent).Text
	if id == "" {
		t.Fatal("the upstream named no session")
	}
	return id
}

// TestUpstreamSessionPerTask: each task's calls reach the upstream in a
// session of their own, which the task keeps from call to call; with
// sessions: shared, every task's calls share one.
func TestUpstreamSessionPerTask(t *testing.T) {
	up, w := sessionsWrit(t)
	_, tokA := w.TaskToken(t, sessionScope)
	_, tokB := w.TaskToken(t, sessionScope)
	a := goClient(t, w.URL+"/mcp/up", tokA, "")
	// The stateless protocol has no agent session: the task is the key.
	a2 := goClient(t, w.URL+"/mcp/up", tokA, "2026-07-28")
	b := goClient(t, w.URL+"/mcp/up", tokB, "")

	first := upstreamSession(t, a)
	if again := upstreamSession(t, a); again != first {
		t.Errorf("task A's second call came in session %s, its first in %s: want one session per task", again, first)
	}
	if other := upstreamSession(t, a2); other != first {
		t.Errorf("task A's call from a second agent connection came in session %s, want the task's session %s", other, first)
	}
	if sb := upstreamSession(t, b); sb == first {
		t.Errorf("tasks A and B share upstream session %s: want one each", sb)
	}
	sa := upstreamSession(t, goClient(t, w.URL+"/mcp/shared", tokA, ""))
	sb := upstreamSession(t, goClient(t, w.URL+"/mcp/shared", tokB, ""))
	if sa != sb {
		t.Errorf("with sessions: shared, tasks A and B came in sessions %s and %s: want one", sa, sb)
	}

	// writ introduces itself to the upstream, with its version. Every
	// session has carried a call by now, so its handshake is over: the
	// shared server's, which writ opens in the background at start, might
	// not have been before.
	for ss := range up.srv.Sessions() {
		p := ss.InitializeParams()
		if p == nil {
			t.Errorf("upstream session %s has no handshake", ss.ID())
			continue
		}
		if ci := p.ClientInfo; ci == nil || ci.Name != "writ" || ci.Version != version.String() {
			t.Errorf("writ introduced itself as %+v, want writ %s", ci, version.String())
		}
		// writ's client offers nothing it does not relay.
		if c := p.Capabilities; c == nil || c.Sampling != nil || c.Elicitation != nil || c.RootsV2 != nil {
			t.Errorf("writ offered the upstream capabilities %+v, want no sampling, elicitation or roots", c)
		}
	}
}

// TestUpstreamSessionLimits: past max_sessions the session idle longest
// makes room, a task whose session was closed gets a new one, a call waits
// for room while every session has a call in flight (and is refused if
// none comes within its timeout), and idle sessions close after
// idle_timeout.
func TestUpstreamSessionLimits(t *testing.T) {
	up := startGoUpstream(t)
	w := startWrit(t, config.MCPConfig{Servers: map[string]config.MCPServer{
		"up": {URL: up.url, MaxSessions: 1, IdleTimeout: 2 * time.Second, Timeout: 10 * time.Second,
			Tools: map[string]config.MCPTool{"session": {Timeout: 500 * time.Millisecond}}},
	}}, config.ProxyConfig{})
	_, tokA := w.TaskToken(t, sessionScope)
	_, tokB := w.TaskToken(t, sessionScope)
	a := goClient(t, w.URL+"/mcp/up", tokA, "")
	b := goClient(t, w.URL+"/mcp/up", tokB, "")

	a1 := upstreamSession(t, a)
	b1 := upstreamSession(t, b) // A's session, idle, makes room
	if b1 == a1 {
		t.Fatalf("task B came in task A's session %s", a1)
	}
	a2 := upstreamSession(t, a)
	if a2 == a1 || a2 == b1 {
		t.Errorf("task A's call after its session closed came in %s: want a new session (A had %s, B %s)", a2, a1, b1)
	}

	// A call of A's in flight holds the only session: B waits for it
	// (echo may wait up to the server's 10s), or is refused when its own
	// timeout (session's 500ms) passes first.
	inFlight := func(millis int) *sync.WaitGroup {
		before := len(up.seen())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res, err := callErr(t, a, "slow", map[string]any{"millis": millis}); err != nil || res.IsError {
				t.Errorf("slow: %v %+v", err, res)
			}
		}()
		testkit.Eventually(t, 30*time.Second, func() error {
			if len(up.seen()) == before {
				return errors.New("the slow call has not reached the upstream")
			}
			return nil
		})
		return &wg
	}
	wg := inFlight(300)
	if res, err := callErr(t, b, "echo", map[string]any{"message": "waited"}); err != nil || res.IsError {
		t.Errorf("a call waiting for the only session: %v %+v", err, res)
	}
	wg.Wait()
	wg = inFlight(3000)
	_, err := callErr(t, b, "session", map[string]any{})
	var we *jsonrpc.Error
	if !errors.As(err, &we) || we.Code != gateway.CodeUnavailable || !strings.Contains(we.Message, "max_sessions") {
		t.Errorf("a call while the only session stays busy past the call's timeout: %v, want code %d naming max_sessions", err, gateway.CodeUnavailable)
	}
	wg.Wait()
	a2 = upstreamSession(t, a)

	// Left idle, the session closes (and so ends at the upstream).
	testkit.Eventually(t, 30*time.Second, func() error {
		if n := up.sessions(); n > 0 {
			return fmt.Errorf("the upstream still has %d sessions of writ's, idle for more than idle_timeout", n)
		}
		return nil
	})
	if again := upstreamSession(t, a); again == a2 {
		t.Errorf("task A's call after its session went idle came in the closed session %s", again)
	}
}

// TestUpstreamSessionEndsWithTask: when a task ends, writ closes its
// upstream session at once, not after idle_timeout; another task's
// session stays. On PostgreSQL the task service learns of the end as
// replicas do, by following the ledger.
func TestUpstreamSessionEndsWithTask(t *testing.T) {
	for _, store := range []string{config.StoreSQLite, config.StorePostgres} {
		t.Run(store, func(t *testing.T) {
			var opts []func(*config.Config)
			if store == config.StorePostgres {
				dsn := pgtest.DSN(t)
				opts = append(opts, func(c *config.Config) { c.Store, c.DSN = config.StorePostgres, dsn })
			}
			sessionEndsWithTask(t, opts...)
		})
	}
}

func sessionEndsWithTask(t *testing.T, opts ...func(*config.Config)) {
	up := startGoUpstream(t)
	w := startWrit(t, config.MCPConfig{Servers: map[string]config.MCPServer{"up": {URL: up.url, IdleTimeout: time.Hour}}}, config.ProxyConfig{}, opts...)
	idA, tokA := w.TaskToken(t, sessionScope)
	_, tokB := w.TaskToken(t, sessionScope)
	upstreamSession(t, goClient(t, w.URL+"/mcp/up", tokA, ""))
	b := goClient(t, w.URL+"/mcp/up", tokB, "")
	sb := upstreamSession(t, b)
	if n := up.sessions(); n != 2 {
		t.Fatalf("the upstream has %d sessions of writ's, want 2", n)
	}

	if st := w.Do(t, "POST", "/v1/tasks/"+idA+"/revoke", w.Tok["alice"], map[string]string{"reason": "test"}, nil); st != http.StatusOK {
		t.Fatalf("revoke: %d", st)
	}
	testkit.Eventually(t, 30*time.Second, func() error {
		if n := up.sessions(); n != 1 {
			return fmt.Errorf("the upstream has %d sessions of writ's after task A ended, want B's alone", n)
		}
		return nil
	})
	if again := upstreamSession(t, b); again != sb {
		t.Errorf("task B's session changed (%s, was %s) when task A ended", again, sb)
	}
}

// TestUpstreamSessionsConcurrent: many tasks calling at once through a
// small pool never hang, never hold more sessions than max_sessions, and
// every call completes, having waited for room when it had to.
func TestUpstreamSessionsConcurrent(t *testing.T) {
	up := startGoUpstream(t)
	const tasks, calls, max = 8, 12, 3
	w := startWrit(t, config.MCPConfig{Servers: map[string]config.MCPServer{"up": {URL: up.url, MaxSessions: max}}}, config.ProxyConfig{})
	clients := make([]*mcp.ClientSession, tasks)
	for i := range clients {
		_, tok := w.TaskToken(t, sessionScope)
		clients[i] = goClient(t, w.URL+"/mcp/up", tok, "")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for _, cs := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				res, err := callErr(t, cs, "echo", map[string]any{"message": "busy"})
				mu.Lock()
				if err == nil && !res.IsError {
					ok++
				} else {
					t.Errorf("a call: %v %+v", err, res)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != tasks*calls {
		t.Errorf("%d calls completed, of %d", ok, tasks*calls)
	}
	if n := up.peakSessions(); n > max {
		t.Errorf("the upstream had up to %d sessions of writ's open at once, max_sessions is %d", n, max)
	}
}
