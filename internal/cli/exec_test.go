package cli

import (
	"context"
	"encoding/base64"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/internal/server/servertest"
)

func TestJWTSubject(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	tests := []struct {
		tok, want, err string
	}{
		{"h." + enc([]byte(`{"sub":"spiffe://writ.dev/agent/a"}`)) + ".s", "spiffe://writ.dev/agent/a", ""},
		{"  h." + enc([]byte(`{"sub":"x","aud":["writ"]}`)) + ".s\n", "x", ""},
		{"h." + enc([]byte(`{"aud":"writ"}`)) + ".s", "", "no sub claim"},
		{"h." + enc([]byte(`{"sub":7}`)) + ".s", "", "not a JSON object"},
		{"h." + enc([]byte(`[]`)) + ".s", "", "not a JSON object"},
		{"h.***.s", "", "not base64url"},
		{"a.b", "", "not a compact JWT"},
		{"", "", "not a compact JWT"},
	}
	for _, tt := range tests {
		got, err := jwtSubject(tt.tok)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("jwtSubject(%q) error %v, want %q", tt.tok, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("jwtSubject(%q) = %q, %v; want %q", tt.tok, got, err, tt.want)
		}
	}
}

// FuzzJWTSubject checks that any input gives a subject or an error, never a
// panic, and that errors never quote the token.
func FuzzJWTSubject(f *testing.F) {
	f.Add("h." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"a"}`)) + ".s")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("h.e30.s")
	f.Fuzz(func(t *testing.T, tok string) {
		sub, err := jwtSubject(tok)
		if err == nil && sub == "" {
			t.Fatal("empty subject without error")
		}
		if err != nil && len(tok) > 8 && strings.Contains(err.Error(), tok) {
			t.Fatalf("error quotes the token: %v", err)
		}
	})
}

// TestChildEnv checks that the task's variables replace inherited ones: a
// requester's WRIT_TOKEN must never reach the agent.
func TestChildEnv(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "WRIT_TOKEN=requester", "WRIT_URL=old", "HOME=/h", "WRIT_TOKEN_FILEX=keep"},
		map[string]string{"WRIT_TOKEN": "task", "WRIT_TOKEN_FILE": "/tmp/t", "WRIT_TASK": "tsk_1", "WRIT_URL": "http://s"})
	want := []string{"PATH=/bin", "HOME=/h", "WRIT_TOKEN_FILEX=keep", "WRIT_TOKEN=task", "WRIT_TOKEN_FILE=/tmp/t", "WRIT_TASK=tsk_1", "WRIT_URL=http://s"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
}

// TestExecExitStatus: writ exec exits with the wrapped command's status.
func TestExecExitStatus(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("needs sh")
	}
	dir := filepath.Join(t.TempDir(), "d")
	srv := servertest.Start(t, servertest.Dev(dir, "prod"))
	env := map[string]string{"WRIT_URL": srv.URL, "WRIT_TOKEN": requesterToken(t, dir)}
	var out, errb strings.Builder
	code := Main(context.Background(), []string{"exec", "--agent", "spiffe://writ.dev/agent/summarizer", "--dev-data-dir", dir,
		"--intent", "fail", "--tools", "kb.search", "--resources", "kb://public/*", "--operations", "read",
		"--data-class", "internal", "--environments", "prod", "--", "sh", "-c", "exit 3"},
		IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }})
	if code != 3 {
		t.Errorf("exit status %d, want the command's 3\n%s", code, errb.String())
	}
}
