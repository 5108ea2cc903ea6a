package jcs

import (
	"strings"
	"testing"
)

// benchEvent is a typical ledger event of about 400 bytes, with members in
// struct order rather than canonical order, as encoding/json writes them.
const benchEvent = `{"type":"action.authorized","time":"2025-06-01T12:34:56.789Z",` +
	`"task_id":"tsk_01HZX3K9QFJ8V2M4N6P7R8S9T0","agent":"spiffe://example.org/agent/bot",` +
	`"decision_id":"dec_01HZX3KA1B2C3D4E5F6G7H8J9K","policy_version":"v42",` +
	`"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","data":{"tool":"github.create_issue",` +
	`"resource":"repo:acme/api","operation":"write","data_class":"internal",` +
	`"args":"sha256:2c26b46b68ffc68ff99b453c1d304134","latency_ms":12.5,"attempt":1}}`

func BenchmarkCanonicalize(b *testing.B) {
	in := []byte(benchEvent)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonicalize(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	benchAppend(b, []byte(benchEvent))
}

// benchAppend canonicalizes in once per iteration into a reused buffer.
func benchAppend(b *testing.B, in []byte) {
	buf := make([]byte, 0, max(1024, len(in)))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = Append(buf[:0], in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	v := map[string]any{
		"type": "action.authorized", "time": "2025-06-01T12:34:56.789012Z",
		"task_id": "tsk_01HZX3K9QFJ8V2M4N6P7R8S9T0", "agent": "spiffe://example.org/agent/research-bot",
		"data": map[string]any{"tool": "github.create_issue", "latency_ms": 12.5, "attempt": 1},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Marshal(v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeepReorder canonicalizes a 1 MiB string under MaxDepth-1 objects
// whose members all need reordering. Layout copies each byte once, so this
// should cost about as much per byte as a flat document, not MaxDepth times
// more.
func BenchmarkDeepReorder(b *testing.B) {
	var sb strings.Builder
	for range MaxDepth - 1 {
		sb.WriteString(`{"b":`)
	}
	sb.WriteString(`"` + strings.Repeat("x", 1<<20) + `"`)
	for range MaxDepth - 1 {
		sb.WriteString(`,"a":0}`)
	}
	benchAppend(b, []byte(sb.String()))
}
