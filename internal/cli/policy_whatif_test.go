package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/client"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/server/servertest"
)

// TestPolicyWhatIf records real calls through a server (a confidential
// read, then sends, which the default pack sends to a step-up), then
// decides them again against candidate bundles: one without the data-flow
// rule, one throttling the agent, and the same pack, which changes nothing.
func TestPolicyWhatIf(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "d")
	srv := servertest.Start(t, servertest.Dev(dir, "dev"))
	const agent = "spiffe://writ.dev/agent/summarizer"
	opened, err := client.New(srv.URL, requesterToken(t, dir)).OpenTask(ctx, api.OpenTask{
		Agent: agent, Intent: "Summarize Q3 invoices and mail finance",
		Scope: api.Scope{Tools: []string{"invoices.*", "mail.send"}, Resources: []string{"erp://invoices/2026-Q3/*", "mail://finance"},
			Operations: []string{"read", "send"}, DataClass: "confidential", Environments: []string{"dev"}},
		TTL: "15m",
	})
	if err != nil {
		t.Fatal(err)
	}
	svid, err := identity.DevSVID(dir, agent, []string{"writ"}, 5*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := client.New(srv.URL, "").ExchangeToken(ctx, svid, opened.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	ag := client.New(srv.URL, tok.AccessToken)
	read := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17", DataClass: "confidential"}
	send := api.Authorize{Tool: "mail.send", Operation: "send", Resource: "mail://finance", DataClass: "internal"}
	for i, c := range []api.Authorize{send, read, send, send} {
		a, err := ag.Authorize(ctx, c)
		if err != nil && a.DecisionID == "" {
			t.Fatalf("call %d: %v", i, err)
		}
		if want := !(i >= 2); a.Allow != want {
			t.Fatalf("call %d (%s): allow %t, want %t (%q)", i, c.Tool, a.Allow, want, a.Reasons)
		}
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}

	// Without the data-flow rule, the two sends after the read are allowed.
	lax := filepath.Join(t.TempDir(), "lax")
	if _, _, code := runWritIn(t, "", "policy", "init", lax); code != 0 {
		t.Fatal("policy init")
	}
	rules, _ := os.ReadFile(filepath.Join(lax, "writ.rego"))
	i := strings.Index(string(rules), "# Once the task has been allowed confidential")
	j := strings.Index(string(rules), "deny contains {\n\t\"id\": \"agent-rate\"")
	if i < 0 || j < i {
		t.Fatal("the data-flow rules are not where the test expects them")
	}
	os.WriteFile(filepath.Join(lax, "writ.rego"), append(rules[:i:i], rules[j:]...), 0o644)
	out, errOut, code := runWritIn(t, "", "policy", "what-if", "--bundle", lax, "--data-dir", dir, "--point", "action", "-o", "json")
	if code != 0 {
		t.Fatalf("what-if: exit %d\n%s%s", code, out, errOut)
	}
	var rep whatIfReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Decisions != 4 || rep.Changed != 2 || rep.Changes["require_approval→allow"] != 2 || len(rep.Results) != 2 {
		t.Fatalf("report %+v", rep)
	}
	for _, o := range rep.Results {
		if o.Tool != "mail.send" || o.History != "recorded" || o.TaskID != opened.TaskID || o.Candidate.Effect != "allow" {
			t.Errorf("changed decision %+v", o)
		}
	}

	// Replaying one of them against the version that made it gives the
	// same step-up, on the history it was decided on.
	out, errOut, code = runWritIn(t, "", "policy", "replay", rep.Results[0].DecisionID, "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "the same policy gives the same decision") ||
		!strings.Contains(out, "history    recorded: the task 2 allowed, 0 denied, 2 in flight, highest data class confidential") {
		t.Fatalf("replay of a send: exit %d\n%s%s", code, out, errOut)
	}

	// Throttling the agent at two calls a minute denies the third and
	// fourth calls; the table says so.
	strict := filepath.Join(t.TempDir(), "strict")
	runWritIn(t, "", "policy", "init", strict)
	data, _ := os.ReadFile(filepath.Join(strict, "data.json"))
	os.WriteFile(filepath.Join(strict, "data.json"), []byte(strings.Replace(string(data), `"agent_calls_per_minute": 0`, `"agent_calls_per_minute": 2`, 1)), 0o644)
	out, errOut, code = runWritIn(t, "", "policy", "what-if", "--bundle", strict, "--data-dir", dir, "--task", opened.TaskID)
	if code != 0 || !strings.Contains(out, "would change") || !strings.Contains(out, "require_approval→deny: 2") ||
		!strings.Contains(out, "throttled") {
		t.Fatalf("what-if with a rate: exit %d\n%s%s", code, out, errOut)
	}

	// The pack that decided: nothing changes, the task and exchange decisions included.
	same := filepath.Join(t.TempDir(), "same")
	runWritIn(t, "", "policy", "init", same)
	out, errOut, code = runWritIn(t, "", "policy", "what-if", "--bundle", same, "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "6 decided again, 0 would change") || !strings.Contains(out, "no recorded decision would change") {
		t.Fatalf("what-if with the same pack: exit %d\n%s%s", code, out, errOut)
	}
	// Only decisions since a time.
	out, _, code = runWritIn(t, "", "policy", "what-if", "--bundle", same, "--data-dir", dir, "--since", time.Now().Add(time.Hour).Format(time.RFC3339))
	if code != 0 || !strings.Contains(out, "0 decided again") {
		t.Fatalf("what-if since an hour ahead: exit %d\n%s", code, out)
	}
	for _, bad := range [][]string{
		{"policy", "what-if", "--data-dir", dir},
		{"policy", "what-if", "--bundle", same, "--point", "list", "--data-dir", dir},
		{"policy", "what-if", "--bundle", same, "--since", "yesterday", "--data-dir", dir},
	} {
		if _, errOut, code := runWritIn(t, "", bad...); code == 0 || !strings.Contains(errOut, "writ: error:") {
			t.Errorf("%q: exit %d, %s", bad, code, errOut)
		}
	}
}
