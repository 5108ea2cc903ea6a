package httpjson_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/httpjson"
)

func TestReadBody(t *testing.T) {
	for _, tc := range []struct {
		body   string
		ok     bool
		status int
		code   string
	}{
		{"12345", true, 0, ""},
		{"123456", false, http.StatusRequestEntityTooLarge, "too_large"},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
		b, ok := httpjson.ReadBody(w, r, 5)
		if ok != tc.ok {
			t.Fatalf("%q: ok = %v", tc.body, ok)
		}
		if ok {
			if string(b) != tc.body {
				t.Errorf("read %q, want %q", b, tc.body)
			}
			continue
		}
		var e api.Error
		if w.Code != tc.status || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error != tc.code || e.Detail == "" {
			t.Errorf("%q: answer %d %s", tc.body, w.Code, w.Body)
		}
		if w.Header().Get("Content-Type") != "application/json" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("headers %v", w.Header())
		}
	}
}
