package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/server/servertest"
	"github.com/writhq/writ/internal/testkit"
)

// TestSinks: a server streams every event it records to its sinks, off
// the request path: a file sink gets them all, in order; an HTTP sink
// whose receiver refuses falls behind, and /readyz (still 200) lists it.
func TestSinks(t *testing.T) {
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer refusing.Close()
	secret := filepath.Join(t.TempDir(), "hmac")
	os.WriteFile(secret, []byte("0123456789abcdef0123"), 0o600)
	path := filepath.Join(t.TempDir(), "events.jsonl")
	cfg := servertest.Dev(t.TempDir(), "dev")
	cfg.Sinks = []config.SinkConfig{
		{Name: "archive", Type: config.SinkFile, Format: config.FormatWrit, Path: path},
		{Name: "hook", Type: config.SinkHTTP, Format: config.FormatOCSF, URL: refusing.URL, SecretFile: secret, LagBound: 2},
	}
	ts := serve(t, cfg)
	ts.token = devToken(t, cfg.DataDir, identity.RoleAdmin, identity.RoleAuditor)
	for i := range 5 {
		if a := ts.post(t, "/v1/ledger/events", fmt.Appendf(nil, `{"type":"import.test","data":{"n":%d}}`, i)); a.status != http.StatusCreated {
			t.Fatalf("append: %d %s", a.status, a.body)
		}
	}
	var lines [][]byte
	testkit.Eventually(t, 20*time.Second, func() error {
		st := ts.srv.Sinks().Statuses()
		if st[0].Lag != 0 || !st[0].Active {
			return fmt.Errorf("archive: %+v", st[0])
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		lines = bytes.Split(bytes.TrimSpace(b), []byte("\n"))
		return nil
	})
	var n int
	for i, line := range lines {
		var l struct {
			Index int             `json:"index"`
			Event json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal(line, &l); err != nil || l.Index != i {
			t.Fatalf("line %d: %s (%v)", i, line, err)
		}
		if bytes.Contains(l.Event, []byte(`"type":"import.test"`)) {
			n++
		}
	}
	if n != 5 {
		t.Errorf("the file holds %d of the 5 appended events", n)
	}
	testkit.Eventually(t, 20*time.Second, func() error {
		a := ts.get(t, "/readyz")
		var ready struct {
			Status  string `json:"status"`
			Lagging []struct {
				Name  string `json:"name"`
				Lag   int    `json:"lag_events"`
				Bound int    `json:"lag_bound"`
				Error string `json:"error"`
			} `json:"sinks_lagging"`
		}
		json.Unmarshal(a.body, &ready)
		if a.status != http.StatusOK || ready.Status != "ready" || len(ready.Lagging) != 1 || ready.Lagging[0].Name != "hook" ||
			ready.Lagging[0].Lag < len(lines) || ready.Lagging[0].Bound != 2 || ready.Lagging[0].Error == "" {
			return fmt.Errorf("/readyz: %d %s", a.status, a.body)
		}
		return nil
	})
}
