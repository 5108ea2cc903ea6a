package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func secretFile(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(p, []byte(s), 0o600)
	return p
}

func TestWebhookSignsAndRetries(t *testing.T) {
	secret := "0123456789abcdef-secret"
	var calls atomic.Int32
	got := make(chan Notification, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !Verify([]byte(secret), r.Header.Get(TimestampHeader), body, r.Header.Get(SignatureHeader)) {
			t.Errorf("bad signature %q", r.Header.Get(SignatureHeader))
		}
		if calls.Add(1) == 1 {
			http.Error(w, "try again", http.StatusServiceUnavailable) // first attempt fails
			return
		}
		var n Notification
		json.Unmarshal(body, &n)
		got <- n
	}))
	defer srv.Close()
	w, err := New(Config{URL: srv.URL, SecretFile: secretFile(t, secret+"\n")})
	if err != nil {
		t.Fatal(err)
	}
	w.Notify(map[string]string{"approval_id": "apr_1", "task_id": "tsk_1"})
	select {
	case n := <-got:
		if n.Event != "approval.requested" || !strings.Contains(toJSON(n.Approval), "apr_1") {
			t.Errorf("notification %+v", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Errorf("%d attempts, want 2 (one failure, one retry)", calls.Load())
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestVerifyRefusesTampering(t *testing.T) {
	secret := []byte("0123456789abcdef")
	sig := Sign(secret, "1700000000", []byte(`{"a":1}`))
	for _, tc := range []struct{ ts, body, sig string }{
		{"1700000001", `{"a":1}`, sig},
		{"1700000000", `{"a":2}`, sig},
		{"1700000000", `{"a":1}`, sig[:len(sig)-1] + "0"},
		{"1700000000", `{"a":1}`, ""},
	} {
		if tc.sig == sig && tc.ts == "1700000000" && tc.body == `{"a":1}` {
			continue
		}
		if Verify(secret, tc.ts, []byte(tc.body), tc.sig) {
			t.Errorf("accepted %+v", tc)
		}
	}
	if !Verify(secret, "1700000000", []byte(`{"a":1}`), sig) {
		t.Error("refused a good signature")
	}
}

func TestNewRefuses(t *testing.T) {
	if _, err := New(Config{URL: "ftp://x", SecretFile: secretFile(t, "0123456789abcdef")}); err == nil {
		t.Error("ftp URL accepted")
	}
	if _, err := New(Config{URL: "http://127.0.0.1:1", SecretFile: secretFile(t, "short")}); err == nil {
		t.Error("short secret accepted")
	}
	_, err := New(Config{URL: "http://127.0.0.1:1", SecretFile: filepath.Join(t.TempDir(), "none")})
	if err == nil {
		t.Error("missing secret file accepted")
	}
}
