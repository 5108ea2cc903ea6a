package httpjson_test

import (
	"encoding/json"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/httpjson"
)

// BenchmarkUnmarshal compares the strict decoder with encoding/json on a
// decision API body, what the server decoded before.
func BenchmarkUnmarshal(b *testing.B) {
	body := []byte(`{"tool":"invoices.read","operation":"read","resource":"erp://invoices/2026-Q3/17","data_class":"confidential","arguments":{"id":17,"fields":["total","due"],"filter":{"status":"open"}}}`)
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v api.Authorize
			if err := json.Unmarshal(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("strict", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v api.Authorize
			if err := httpjson.Unmarshal(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
