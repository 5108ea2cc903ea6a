package gateway

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// A stdio server printing a secret writ gave it does not put it in writ's log.
func TestStderrRedacted(t *testing.T) {
	var buf bytes.Buffer
	w := &logWriter{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), secrets: []string{"tok-5ecret"}}
	w.Write([]byte("starting\nusing key tok-5ecret for api\n"))
	if out := buf.String(); strings.Contains(out, "tok-5ecret") || !strings.Contains(out, "using key [redacted] for api") || !strings.Contains(out, "starting") {
		t.Errorf("log: %s", out)
	}
}

// A stdio server logging the arguments or results it handles does not put
// the credentials in them in writ's log.
func TestStderrCredentialsRedacted(t *testing.T) {
	var buf bytes.Buffer
	w := &logWriter{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	tok := "ghp_" + strings.Repeat("k7", 18)
	w.Write([]byte("call echo {\"password\": \"hunter2\", \"auth\": \"" + tok + "\"}\n"))
	if out := buf.String(); strings.Contains(out, "hunter2") || strings.Contains(out, tok) || !strings.Contains(out, "call echo") {
		t.Errorf("log: %s", out)
	}
}
