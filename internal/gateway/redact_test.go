package gateway_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/writhq/writ/internal/config"
)

// TestResultRedaction: the policy's output redaction paths apply to the
// MCP result recorded in the ledger (the agent gets the result as is), and
// argument redaction to the arguments recorded.
func TestResultRedaction(t *testing.T) {
	up := startGoUpstream(t)
	pol, err := filepath.Abs(filepath.Join("testdata", "policy-redact"))
	if err != nil {
		t.Fatal(err)
	}
	w := upWrit(t, up.url, func(c *config.Config) { c.Policy.Dir, c.Policy.Engine = pol, "rego" })
	taskID, token := w.TaskToken(t, upScope)
	cs := goClient(t, w.URL+"/mcp/up", token, "")
	res, err := callErr(t, cs, "echo", map[string]any{"message": "hi", "password": "pw-in-arguments"})
	if err != nil || res.IsError {
		t.Fatalf("echo: %v %+v", err, res)
	}
	if b, _ := json.Marshal(res.StructuredContent); !bytes.Contains(b, []byte("s3cr3t-output")) {
		t.Errorf("the agent's result %s: want it unredacted", b)
	}
	evs := w.Trace(t, taskID)
	auth, done := ofType(evs, "action.authorized"), ofType(evs, "action.completed")
	if len(auth) != 1 || len(done) != 1 || !done[0].Data.Recorded {
		t.Fatalf("authorized %+v, completed %+v", auth, done)
	}
	if len(auth[0].Data.Redacted) != 1 || auth[0].Data.Redacted[0] != "arguments.password" {
		t.Errorf("redacted arguments %v, want [arguments.password]", auth[0].Data.Redacted)
	}
	outputs := w.Bodies(t, "output")
	args := w.Bodies(t, "arguments")
	if len(outputs) != 1 {
		t.Fatalf("%d output bodies, want 1", len(outputs))
	}
	for _, b := range outputs {
		var out struct {
			StructuredContent map[string]string `json:"structuredContent"`
		}
		if err := json.Unmarshal(b, &out); err != nil || out.StructuredContent["secret"] != "[redacted]" || out.StructuredContent["echo"] != "hi" {
			t.Errorf("recorded output %s: want secret redacted, echo kept", b)
		}
	}
	for _, b := range args {
		if bytes.Contains(b, []byte("pw-in-arguments")) {
			t.Errorf("recorded arguments %s hold the password", b)
		}
	}
}

// redactPolicy is the policy pack that also redacts output fields.
func redactPolicy(t testing.TB) string {
	t.Helper()
	pol, err := filepath.Abs(filepath.Join("testdata", "policy-redact"))
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
