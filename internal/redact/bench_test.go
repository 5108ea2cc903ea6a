package redact_test

import (
	"testing"

	"github.com/writhq/writ/internal/redact"
)

// A typical tool call's arguments: a few members, one of them a secret.
var smallArgs = []byte(`{"invoice": 17, "period": "2026-Q3", "format": "pdf", "notify": ["finance@example.org"], "password": "hunter2", "options": {"lang": "en", "pages": [1, 2]}}`)

func BenchmarkRedact(b *testing.B) {
	e := redact.Default()
	extra := []string{"arguments.secret", "arguments.**.pin"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := e.Redact("arguments", smallArgs, extra); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRedactClean is the common case: nothing to redact.
func BenchmarkRedactClean(b *testing.B) {
	doc := []byte(`{"invoice": 17, "period": "2026-Q3", "format": "pdf", "notify": ["finance@example.org"], "options": {"lang": "en"}}`)
	e := redact.Default()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := e.Redact("arguments", doc, nil); err != nil {
			b.Fatal(err)
		}
	}
}
