package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
)

// FuzzIsCancelNotice: any body is classified without a panic, and a
// request counts as a notifications/cancelled exactly when its body is a
// JSON object whose method says so.
func FuzzIsCancelNotice(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3,"reason":"context canceled"}}`,
		`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"notifications/cancelled"}}`,
		`{"method":"notifications/cancelled"`, `[]`, ``, `{"method":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := http.NewRequest(http.MethodPost, "http://upstream.invalid/mcp", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got := isCancelNotice(r)
		var msg struct {
			Method string `json:"method"`
		}
		want := len(body) <= 4096 && json.NewDecoder(bytes.NewReader(body)).Decode(&msg) == nil && msg.Method == "notifications/cancelled"
		if got != want {
			t.Errorf("isCancelNotice(%q) = %v, want %v", body, got, want)
		}
	})
}
