package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/server"
	"github.com/writhq/writ/internal/server/servertest"
)

// testServer is a real writ server on a loopback port, serving a data
// directory in the test's temporary directory.
type testServer struct {
	srv   *server.Server
	url   string
	dir   string
	token string // an admin and auditor dev token
	s     *servertest.Server
}

// startServer starts a server in dev mode on dir (a fresh directory when dir
// is empty) and stops it when the test ends.
func startServer(t testing.TB, dir string) *testServer {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ts := serve(t, servertest.Dev(dir, "dev"))
	ts.token = devToken(t, dir, identity.RoleAdmin, identity.RoleAuditor)
	return ts
}

// serve starts a server with cfg and stops it when the test ends.
func serve(t testing.TB, cfg config.Config) *testServer {
	t.Helper()
	s := servertest.Start(t, cfg)
	return &testServer{srv: s.Server, url: s.URL, dir: cfg.DataDir, s: s}
}

// stop stops the server now and returns how it ended.
func (ts *testServer) stop() error { return ts.s.Stop() }

// answer is an HTTP answer read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// devToken mints a dev token for a human holding roles.
func devToken(t testing.TB, dir string, roles ...identity.Role) string {
	t.Helper()
	tok, err := identity.DevToken(dir, "test-human", roles, time.Hour, time.Now())
	if err != nil {
		t.Fatalf("minting a dev token: %v", err)
	}
	return tok
}

// do sends a request, with a JSON body when body is not nil and a bearer
// token when token is not empty, and reads the whole answer.
func do(t *testing.T, method, url, token string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// get fetches path from the server as its admin.
func (ts *testServer) get(t *testing.T, path string) answer {
	t.Helper()
	return do(t, http.MethodGet, ts.url+path, ts.token, nil)
}

// post sends body to path as the server's admin.
func (ts *testServer) post(t *testing.T, path string, body []byte) answer {
	t.Helper()
	if body == nil {
		body = []byte{}
	}
	return do(t, http.MethodPost, ts.url+path, ts.token, body)
}

// postNDJSON appends the NDJSON body to the ledger's events as the
// server's admin and returns the status of the answer.
func (ts *testServer) postNDJSON(t *testing.T, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.url+"/v1/ledger/events", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+ts.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// apiError decodes an error answer, failing the test unless it is the
// documented {error, detail} JSON with a non-empty detail.
func apiError(t *testing.T, a answer) api.Error {
	t.Helper()
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error answer Content-Type = %q, want application/json", ct)
	}
	var e api.Error
	dec := json.NewDecoder(bytes.NewReader(a.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error answer is not {error, detail}: %v; body %q", err, a.body)
	}
	if e.Error == "" || e.Detail == "" {
		t.Errorf("error answer lacks a code or a detail: %+v", e)
	}
	return e
}

// appendEvent appends one event over HTTP as the server's admin and returns
// its index and the HTTP status (0 when no answer came).
func appendEvent(ctx context.Context, c *http.Client, ts *testServer, e api.Event) (uint64, int, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return 0, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+"/v1/ledger/events", bytes.NewReader(b))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+ts.token)
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusCreated {
		return 0, resp.StatusCode, fmt.Errorf("append: %d %s", resp.StatusCode, body)
	}
	var out api.Appended
	if err := json.Unmarshal(body, &out); err != nil {
		return 0, resp.StatusCode, fmt.Errorf("append answer %q: %v", body, err)
	}
	return out.Index, resp.StatusCode, nil
}

func TestHealthAndReadiness(t *testing.T) {
	ts := startServer(t, "")
	for _, path := range []string{"/healthz", "/readyz"} {
		a := ts.get(t, path)
		if a.status != http.StatusOK {
			t.Errorf("GET %s = %d %s, want 200", path, a.status, a.body)
		}
		if ct := a.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s Content-Type = %q", path, ct)
		}
	}
}

func TestAppendErrors(t *testing.T) {
	ts := startServer(t, "")
	big := `{"type":"import.test","data":{"pad":"` + strings.Repeat("a", ledger.MaxInputBytes) + `"}}`
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantCode   string
		wantDetail string // a substring of detail
	}{
		{"malformed JSON", `{"type":`, 400, "invalid_event", ""},
		{"not an object", `[1,2]`, 400, "invalid_event", ""},
		{"empty body", ``, 400, "invalid_event", ""},
		{"unknown type", `{"type":"no.such.type"}`, 400, "invalid_event", "no.such.type"},
		{"missing type", `{"task_id":"t1"}`, 400, "invalid_event", "type"},
		{"unknown field", `{"type":"import.test","colour":"red"}`, 400, "invalid_event", "colour"},
		{"trailing garbage", `{"type":"import.test"} {"type":"import.test"}`, 400, "invalid_event", ""},
		{"over the size limit", big, 413, "too_large", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := ts.post(t, "/v1/ledger/events", []byte(tt.body))
			if a.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", a.status, tt.wantStatus, a.body)
			}
			e := apiError(t, a)
			if e.Error != tt.wantCode {
				t.Errorf("error = %q, want %q (detail %q)", e.Error, tt.wantCode, e.Detail)
			}
			if !strings.Contains(e.Detail, tt.wantDetail) {
				t.Errorf("detail %q does not mention %q", e.Detail, tt.wantDetail)
			}
		})
	}
	// Nothing of the above reached the ledger.
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	for i, e := range readEvents(t, ts.dir) {
		if strings.HasPrefix(e.Type, ledger.ImportPrefix) {
			t.Errorf("a rejected request left event %d (%s) in the ledger", i, e.Type)
		}
	}
}

// openDir opens a data directory (of a stopped server, or a PostgreSQL
// store with o) for reading; close it.
func openDir(t *testing.T, dir string, o datadir.Options) *datadir.Dir {
	t.Helper()
	d, err := datadir.Open(context.Background(), dir, o)
	if err != nil {
		t.Fatalf("reopening %s: %v", dir, err)
	}
	return d
}

// readEvents reads every event of a stopped server's data directory.
func readEvents(t *testing.T, dir string) []ledger.Event {
	t.Helper()
	d := openDir(t, dir, datadir.Options{})
	defer d.Close()
	var out []ledger.Event
	err := d.Store.ScanLeaves(context.Background(), 0, func(i uint64, leaf []byte) error {
		if i != uint64(len(out)) {
			return fmt.Errorf("leaf %d where %d was expected", i, len(out))
		}
		e, err := ledger.ParseLeaf(i, leaf)
		if err != nil {
			return err
		}
		out = append(out, e.Event)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEraseEndpoint(t *testing.T) {
	ts := startServer(t, "")
	ctx := context.Background()
	idx, _, err := appendEvent(ctx, http.DefaultClient, ts, api.Event{
		Type: "import.test", TaskID: "task-erase", Bodies: map[string]string{"output": "card 4111 1111 1111 1111"},
	})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := json.Marshal(api.Erase{Index: idx, Name: "output", Reason: "test erasure"})

	a := ts.post(t, "/v1/ledger/erasures", req)
	if a.status != http.StatusCreated {
		t.Fatalf("first erasure = %d %s, want 201", a.status, a.body)
	}
	var got api.Appended
	if err := json.Unmarshal(a.body, &got); err != nil {
		t.Fatalf("erasure answer %q: %v", a.body, err)
	}
	if got.Index <= idx {
		t.Errorf("erasure recorded as event %d, want after the erased event %d", got.Index, idx)
	}

	a = ts.post(t, "/v1/ledger/erasures", req)
	if a.status != http.StatusNotFound {
		t.Fatalf("repeated erasure = %d %s, want 404", a.status, a.body)
	}
	if e := apiError(t, a); e.Error != "not_found" {
		t.Errorf("repeated erasure error = %q, want not_found", e.Error)
	}

	for _, tt := range []struct {
		name, body string
		status     int
	}{
		{"no such body", `{"index":` + fmt.Sprint(idx) + `,"name":"nope","reason":"x"}`, 404},
		{"no such event", `{"index":999999,"name":"output","reason":"x"}`, 404},
		{"unknown field", `{"index":0,"name":"output","reason":"x","purge":true}`, 400},
		{"malformed", `{"index":`, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := ts.post(t, "/v1/ledger/erasures", []byte(tt.body))
			if a.status != tt.status {
				t.Fatalf("status = %d %s, want %d", a.status, a.body, tt.status)
			}
			apiError(t, a)
		})
	}

	// The erasure must not break the ledger: stop, then verify offline.
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	rep := verifyDir(t, ts.dir)
	if rep.Erased != 1 {
		t.Errorf("verify counted %d erased bodies, want 1", rep.Erased)
	}
}

func TestUnknownPath(t *testing.T) {
	ts := startServer(t, "")
	for _, tt := range []struct{ method, path string }{
		{"GET", "/nope"},
		{"GET", "/v1/ledger/nope"},
		{"POST", "/ledger/checkpoint/extra"},
		{"DELETE", "/v2/things"},
	} {
		a := do(t, tt.method, ts.url+tt.path, ts.token, nil)
		if a.status != http.StatusNotFound && a.status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s = %d, want 404 or 405", tt.method, tt.path, a.status)
			continue
		}
		if a.status == http.StatusNotFound {
			if e := apiError(t, a); e.Error != "not_found" {
				t.Errorf("%s %s error = %q, want not_found", tt.method, tt.path, e.Error)
			}
		}
	}
}

func TestSecondServerOnSameDataDir(t *testing.T) {
	ts := startServer(t, "")
	cfg := config.Default()
	cfg.DataDir = ts.dir
	cfg.Listen, cfg.Dev = "127.0.0.1:0", true
	srv, err := server.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		srv.Shutdown(context.Background())
		t.Fatal("a second server opened a data directory another one holds")
	}
	var le *datadir.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v (%T), want *datadir.LockedError", err, err)
	}
	if !errors.Is(err, datadir.ErrLocked) {
		t.Errorf("err %v does not match datadir.ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "in use") {
		t.Errorf("err %q does not say the directory is in use", err)
	}
	// The first server is unharmed.
	if a := ts.get(t, "/readyz"); a.status != http.StatusOK {
		t.Errorf("first server /readyz = %d after the failed second start", a.status)
	}
}

// verifyDir opens a stopped server's data directory read-only and runs the
// full ledger verification, failing the test on any problem.
func verifyDir(t *testing.T, dir string) *ledger.Report {
	t.Helper()
	d := openDir(t, dir, datadir.Options{})
	defer d.Close()
	rep := verifyLedger(t, d)
	if rep.LatestCheckpoint != rep.Size || rep.Uncovered != 0 {
		t.Errorf("after shutdown the latest checkpoint covers %d of %d events", rep.LatestCheckpoint, rep.Size)
	}
	return rep
}

// verifyLedger runs the full ledger verification over d, failing the test
// on any problem.
func verifyLedger(t *testing.T, d *datadir.Dir) *ledger.Report {
	t.Helper()
	v, err := ledger.NewVerifier(d.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := ledger.Verify(context.Background(), d.Store, v, d.VerifierKey)
	if err != nil {
		t.Fatalf("ledger.Verify: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("ledger verification failed: %v", rep.Failures)
	}
	return rep
}

// TestGracefulShutdown cancels Serve while appends are in flight: every
// append that was acknowledged must be in the ledger afterwards, under a
// final checkpoint, and the ledger must verify.
func TestGracefulShutdown(t *testing.T) {
	ts := startServer(t, "")
	const workers = 32
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()

	type ack struct {
		index  uint64
		taskID string
	}
	var (
		mu       sync.Mutex
		acked    []ack
		statuses = map[int]int{}
		wg       sync.WaitGroup
		started  = make(chan struct{}, workers*4)
	)
	stopAppending := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stopAppending:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, n)
				idx, status, err := appendEvent(context.Background(), client, ts, api.Event{Type: "import.test", TaskID: id})
				mu.Lock()
				statuses[status]++
				if err == nil {
					acked = append(acked, ack{idx, id})
				}
				mu.Unlock()
				select {
				case started <- struct{}{}:
				default:
				}
				if err != nil && status == 0 {
					return // connection refused or reset: the server is gone
				}
			}
		})
	}
	// Let appends flow, then shut down while they run.
	for range workers * 4 {
		<-started
	}
	if err := ts.stop(); err != nil {
		t.Fatalf("graceful shutdown: %v", err)
	}
	close(stopAppending)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("acknowledged %d appends; statuses %v", len(acked), statuses)
	if len(acked) == 0 {
		t.Fatal("no append was acknowledged")
	}
	for status := range statuses {
		switch status {
		case 0, http.StatusCreated, http.StatusServiceUnavailable:
		default:
			t.Errorf("an append during shutdown got status %d", status)
		}
	}

	rep := verifyDir(t, ts.dir)
	events := readEvents(t, ts.dir)
	if uint64(len(events)) != rep.Size {
		t.Errorf("read %d events, verify saw %d", len(events), rep.Size)
	}
	taskAt := func(i uint64) string {
		if i >= uint64(len(events)) {
			return "<beyond the end of the ledger>"
		}
		return events[i].TaskID
	}
	var lost []ack
	for _, a := range acked {
		if taskAt(a.index) != a.taskID {
			lost = append(lost, a)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d acknowledged appends are not in the ledger at their index, e.g. %+v (found %q)", len(lost), lost[0], taskAt(lost[0].index))
	}
}

// TestRestartKeepsLedger checks that a stopped server's ledger reopens in a
// new server with the same identity and keeps growing.
func TestRestartKeepsLedger(t *testing.T) {
	ts := startServer(t, "")
	ctx := context.Background()
	first, _, err := appendEvent(ctx, http.DefaultClient, ts, api.Event{Type: "import.test", TaskID: "before"})
	if err != nil {
		t.Fatal(err)
	}
	key1 := ts.get(t, "/ledger/key").body
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	ts2 := startServer(t, ts.dir)
	if diff := cmp.Diff(string(key1), string(ts2.get(t, "/ledger/key").body)); diff != "" {
		t.Errorf("verifier key changed across a restart (-before +after):\n%s", diff)
	}
	second, _, err := appendEvent(ctx, http.DefaultClient, ts2, api.Event{Type: "import.test", TaskID: "after"})
	if err != nil {
		t.Fatal(err)
	}
	if second <= first {
		t.Errorf("after restart an event got index %d, not after %d", second, first)
	}
	if err := ts2.stop(); err != nil {
		t.Fatal(err)
	}
	verifyDir(t, ts.dir)
}

// TestLedgerAPIRoles checks who may read and write the ledger: auditors
// read, admins write, and nobody without a valid token does either.
func TestLedgerAPIRoles(t *testing.T) {
	ts := startServer(t, "")
	auditor := devToken(t, ts.dir, identity.RoleAuditor)
	requester := devToken(t, ts.dir, identity.RoleRequester)
	event := []byte(`{"type":"import.test"}`)
	tests := []struct {
		name, method, path, token string
		body                      []byte
		want                      int
	}{
		{"health needs no token", "GET", "/healthz", "", nil, 200},
		{"readiness needs no token", "GET", "/readyz", "", nil, 200},
		{"checkpoint without a token", "GET", "/ledger/checkpoint", "", nil, 401},
		{"tile without a token", "GET", "/ledger/tile/entries/000.p/1", "", nil, 401},
		{"append without a token", "POST", "/v1/ledger/events", "", event, 401},
		{"append with a forged token", "POST", "/v1/ledger/events", ts.token + "x", event, 401},
		{"auditor reads the checkpoint", "GET", "/ledger/checkpoint", auditor, nil, 200},
		{"auditor reads the key", "GET", "/ledger/key", auditor, nil, 200},
		{"auditor may not append", "POST", "/v1/ledger/events", auditor, event, 403},
		{"auditor may not erase", "POST", "/v1/ledger/erasures", auditor, []byte(`{"index":0,"name":"x","reason":"y"}`), 403},
		{"requester may not read", "GET", "/ledger/checkpoint", requester, nil, 403},
		{"admin appends", "POST", "/v1/ledger/events", ts.token, event, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, tt.method, ts.url+tt.path, tt.token, tt.body)
			if a.status != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, a.status, a.body, tt.want)
			}
			if a.status >= 400 {
				apiError(t, a)
			}
			if a.status == http.StatusUnauthorized && a.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without a WWW-Authenticate challenge")
			}
		})
	}
	// Only the admin's append reached the ledger.
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range readEvents(t, ts.dir) {
		if e.Type == "import.test" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d import.test events in the ledger, want exactly the admin's one", n)
	}
}
