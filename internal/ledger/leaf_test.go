package ledger

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/writhq/writ/internal/jcs"
)

// appendLeaf must write exactly what a generic canonicalizer makes of the
// same envelope.
func TestAppendLeafMatchesJCS(t *testing.T) {
	docs := []leafDoc{
		{V: 1, Type: "import.x", Time: "2026-11-25T21:00:00.000000000Z"},
		{V: 1, Type: TypeActionAuthorized, Time: "2026-11-25T21:00:00.123456789Z", TaskID: "tsk_1", Principal: "oidc:https://id.example#alice",
			Agent: "spiffe://example.org/agent/α", DecisionID: "dec_1", PolicyVersion: "sha256:ab", JTI: "j\"1", TraceID: "t\\1",
			Data:        json.RawMessage(`{"z":1, "a":[1.50,"\u00e9"], "é":{"b":true,"a":null}}`),
			Commitments: map[string]string{"output": "sha256:01", "arguments": "sha256:02"}},
		{V: 1, Type: "task.requested", Time: "2026-11-25T21:00:00.000000000Z", Data: json.RawMessage(`{}`), Commitments: map[string]string{"intent": "sha256:03"}},
		{V: 1, Type: "import.ctl", Time: "2026-11-25T21:00:00.000000000Z", Agent: "tab\there\x01\u2028"},
	}
	for _, d := range docs {
		got, err := appendLeaf(nil, &d)
		if err != nil {
			t.Fatal(err)
		}
		want, err := jcs.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("appendLeaf:\n got %s\nwant %s", got, want)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	e := Event{Type: TypeActionAuthorized, TaskID: "tsk_01JD8X6Q5Z3V4M2N8P7R", Principal: "oidc:https://id.example.com#alice",
		Agent: "spiffe://example.org/agent/summarizer", DecisionID: "dec_1", PolicyVersion: "sha256:9f2c4a1b7e3d5f60c8a9b2d1e4f70a3c5b6d8e9f0a1b2c3d4e5f6a7b8c9d0e1f",
		Data:   json.RawMessage(`{"action_id":"act_1","tool":"invoices.read","operation":"read","resource":"erp://invoices/2026-Q3/1","data_class":"confidential"}`),
		Bodies: map[string][]byte{"arguments": []byte(`{"invoice":"1"}`)}}
	e.Time = e.Time.AddDate(2026, 0, 0)
	b.ReportAllocs()
	for range b.N {
		if _, _, _, err := encode(&e, limits{maxBody: 1 << 20}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseLeaf(b *testing.B) {
	e := Event{Type: TypeActionAuthorized, TaskID: "tsk_01JD8X6Q5Z3V4M2N8P7R", Principal: "oidc:https://id.example.com#alice",
		Agent: "spiffe://example.org/agent/summarizer", DecisionID: "dec_1", PolicyVersion: "sha256:9f2c4a1b7e3d5f60c8a9b2d1e4f70a3c5b6d8e9f0a1b2c3d4e5f6a7b8c9d0e1f",
		Data:   json.RawMessage(`{"action_id":"act_1","tool":"invoices.read","operation":"read","resource":"erp://invoices/2026-Q3/1","data_class":"confidential","reasons":["task scope covers tool and resource"]}`),
		Bodies: map[string][]byte{"arguments": []byte(`{"invoice":"1"}`)}}
	e.Time = e.Time.AddDate(2026, 0, 0)
	leaf, _, _, err := encode(&e, limits{maxBody: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for range b.N {
		if _, err := ParseLeaf(1, leaf); err != nil {
			b.Fatal(err)
		}
	}
}
