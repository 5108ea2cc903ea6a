package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/identity"
)

func runWrit(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	return out.String(), errb.String(), code
}

func TestDevCommands(t *testing.T) {
	dir := t.TempDir()
	if out, errs, code := runWrit(t, "dev", "token", "--human", "alice", "--data-dir", dir); code != 1 || out != "" || !strings.Contains(errs, "writ: hint: run 'writ dev init'") {
		t.Errorf("token before init: code %d, stdout %q, stderr %q", code, out, errs)
	}
	out, errs, code := runWrit(t, "dev", "init", "--data-dir", dir)
	if code != 0 || out != "" || !strings.Contains(errs, "DEV MODE") {
		t.Fatalf("dev init: code %d, stdout %q, stderr %q", code, out, errs)
	}
	if _, _, code := runWrit(t, "dev", "init", "--data-dir", dir); code != 0 {
		t.Fatalf("second dev init: code %d", code)
	}
	a, err := identity.New(t.Context(), config.DefaultIdentity(), identity.Options{Dev: true, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	tests := []struct {
		args  []string
		id    string
		roles []identity.Role
	}{
		{[]string{"dev", "token", "--human", "alice", "--role", "requester", "--role", "approver", "--data-dir", dir}, "oidc:writ-dev#alice", []identity.Role{identity.RoleRequester, identity.RoleApprover}},
		{[]string{"dev", "token", "--data-dir", dir, "--human", "bob", "--ttl", "10m"}, "oidc:writ-dev#bob", nil},
		{[]string{"dev", "svid", "--agent", "spiffe://writ.dev/agent/summarizer", "--audience", "writ", "--data-dir", dir}, "spiffe://writ.dev/agent/summarizer", nil},
	}
	for _, tt := range tests {
		out, errs, code := runWrit(t, tt.args...)
		if code != 0 || errs != "" || strings.Count(out, "\n") != 1 {
			t.Fatalf("%v: code %d, stdout %q, stderr %q", tt.args, code, out, errs)
		}
		p, err := a.VerifyToken(t.Context(), strings.TrimSpace(out))
		if err != nil {
			t.Fatalf("%v: token refused: %v", tt.args, err)
		}
		if p.ID != tt.id || len(p.Roles) != len(tt.roles) || p.Expiry.After(time.Now().Add(time.Hour)) {
			t.Errorf("%v: principal %+v", tt.args, p)
		}
	}

	usage := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"dev", "token", "--data-dir", dir}, 2, "missing --human"},
		{[]string{"dev", "token", "--human", "a", "--role", "root", "--data-dir", dir}, 1, "unknown role"},
		{[]string{"dev", "token", "--human", "a", "--ttl", "72h", "--data-dir", dir}, 1, "at most 24h"},
		{[]string{"dev", "svid", "--data-dir", dir}, 2, "missing --agent"},
		{[]string{"dev", "svid", "--agent", "spiffe://example.org/x", "--data-dir", dir}, 1, "only for trust domain writ.dev"},
		{[]string{"dev", "svid", "--agent", "not-an-id", "--data-dir", dir}, 1, "not-an-id"},
	}
	for _, u := range usage {
		out, errs, code := runWrit(t, u.args...)
		if code != u.code || out != "" || !strings.Contains(errs, u.err) {
			t.Errorf("%v: code %d, stdout %q, stderr %q; want code %d and %q", u.args, code, out, errs, u.code, u.err)
		}
	}
	if fi, err := os.Stat(dir + "/dev/issuer-key.pem"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", fi, err)
	}
}
