package cli

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/client"
	"github.com/writhq/writ/internal/server/servertest"
	"github.com/writhq/writ/internal/store/bodyenc"
)

// TestPolicyReplay records a real task decision through a server, then
// replays it from the data directory, and shows a changed input is caught.
func TestPolicyReplay(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	srv := servertest.Start(t, servertest.Dev(dir, "prod"))
	var opened api.TaskOpened
	err := client.New(srv.URL, requesterToken(t, dir)).Do(context.Background(), "POST", "/v1/tasks", api.OpenTask{
		Agent: "spiffe://writ.dev/agent/summarizer", Intent: "Summarize Q3 invoices",
		Scope: api.Scope{Tools: []string{"invoices.*"}, Resources: []string{"erp://invoices/2026-Q3/*"},
			Operations: []string{"read"}, DataClass: "confidential", Environments: []string{"prod"}},
		TTL: "15m",
	}, &opened)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := runWritIn(t, "", "policy", "replay", opened.DecisionID, "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "the same policy gives the same decision") || !strings.Contains(out, opened.PolicyVersion) {
		t.Fatalf("replay: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := runWritIn(t, "", "policy", "replay", "dec_nosuchdecision", "--data-dir", dir); code != 1 || !strings.Contains(errOut, "no decision") {
		t.Errorf("unknown decision: exit %d, %s", code, errOut)
	}

	// The recorded input is the document the engine saw: version, point and
	// derived facts filled in.
	db, err := sql.Open("sqlite", filepath.Join(dir, "writ.db"))
	if err != nil {
		t.Fatal(err)
	}
	var stored []byte
	var enc int
	if err := db.QueryRow(`SELECT data, enc FROM bodies WHERE name = 'input'`).Scan(&stored, &enc); err != nil {
		t.Fatal(err)
	}
	raw, err := bodyenc.Unpack(enc, stored)
	if err != nil {
		t.Fatal(err)
	}
	recorded := string(raw)
	for _, want := range []string{`"version":1`, `"point":"task"`, `"environment_in_scope":true`, `"ceiling_level":2`} {
		if !strings.Contains(recorded, want) {
			t.Errorf("recorded input lacks %s: %s", want, recorded)
		}
	}

	// Change the recorded input behind writ's back: its commitment no longer matches.
	if _, err := db.Exec(`UPDATE bodies SET data = ?, enc = 0 WHERE name = 'input'`, strings.ReplaceAll(recorded, "confidential", "public")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, errOut, code := runWritIn(t, "", "policy", "replay", opened.DecisionID, "--data-dir", dir); code != 1 || !strings.Contains(errOut, "does not match its commitment") {
		t.Errorf("tampered input: exit %d, %s", code, errOut)
	}
}
