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
	for _, bc := range []struct {
		name      string
		unmarshal func([]byte, any) error
	}{{"encoding-json", json.Unmarshal}, {"strict", httpjson.Unmarshal}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var v api.Authorize
				if err := bc.unmarshal(body, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
