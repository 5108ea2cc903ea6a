package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/policy"
)

// runWrit runs the CLI and returns its exit status, stdout and stderr.
func runPolicyCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	io := IO{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code := Main(context.Background(), args, io)
	return code, out.String(), errb.String()
}

var versionRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`)

func TestPolicyInitVersionCheckTest(t *testing.T) {
	for _, engine := range []string{"rego", "cedar"} {
		t.Run(engine, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "bundle")
			code, out, errs := runPolicyCLI(t, "", "policy", "init", "--engine", engine, dir)
			if code != 0 || !strings.Contains(out, "wrote the default "+engine+" pack") {
				t.Fatalf("init: %d %q %q", code, out, errs)
			}
			if code, _, errs := runPolicyCLI(t, "", "policy", "init", "--engine", engine, dir); code != 1 || !strings.Contains(errs, "already exists") {
				t.Errorf("second init over the same directory: %d %q", code, errs)
			}

			code, out, _ = runPolicyCLI(t, "", "policy", "version", dir)
			if code != 0 || !versionRE.MatchString(out) {
				t.Fatalf("version: %d %q", code, out)
			}
			src, _ := policy.DefaultPack(engine)
			if strings.TrimSpace(out) != policy.Version(src) {
				t.Errorf("version of the written pack %s differs from the embedded one %s", out, policy.Version(src))
			}

			code, out, errs = runPolicyCLI(t, "", "policy", "check", dir)
			if code != 0 || !strings.Contains(out, "ok: "+engine+" bundle sha256:") || !strings.Contains(out, "0 warnings") {
				t.Fatalf("check: %d %q %q", code, out, errs)
			}
			code, out, errs = runPolicyCLI(t, "", "policy", "test", dir)
			if code != 0 || !regexp.MustCompile(`^(\d+)/(\d+) passed`).MatchString(out) {
				t.Fatalf("test: %d %q %q", code, out, errs)
			}

			// Break a test case: the run must fail and say which.
			cases := filepath.Join(dir, "tests.json")
			data, _ := os.ReadFile(cases)
			data = bytes.Replace(data, []byte(`"effect": "deny"`), []byte(`"effect": "allow"`), 1)
			os.WriteFile(cases, data, 0o600)
			code, out, errs = runPolicyCLI(t, "", "policy", "test", dir)
			if code != 1 || !strings.Contains(out, "FAIL tests.json: ") || !strings.Contains(errs, "policy tests failed") {
				t.Fatalf("failing test run: %d %q %q", code, out, errs)
			}

			// Break the policy: check must fail and name the file.
			os.WriteFile(filepath.Join(dir, "broken."+engine), []byte("{{"), 0o600)
			code, _, errs = runPolicyCLI(t, "", "policy", "check", dir)
			if code != 1 || !strings.Contains(errs, "broken."+engine) {
				t.Fatalf("check of a broken bundle: %d %q", code, errs)
			}
		})
	}
}

func TestPolicyEval(t *testing.T) {
	in := filepath.Join("testdata", "policy", "action-stepup.json")
	for _, engine := range []string{"rego", "cedar"} {
		code, out, errs := runPolicyCLI(t, "", "policy", "eval", "--point", "action", "--input", in, "--engine", engine)
		if code != 0 {
			t.Fatalf("%s: %d %q", engine, code, errs)
		}
		var d policy.Decision
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatalf("%s: output is not a decision: %v\n%s", engine, err, out)
		}
		if d.Effect != policy.RequireApproval || d.Engine != engine || d.Obligations.Approvals != 1 || !strings.HasPrefix(d.ID, "dec_") {
			t.Errorf("%s: decision %+v", engine, d)
		}
	}
	// stdin, list point.
	code, out, _ := runPolicyCLI(t, `{"task": {"scope": {"tools": ["mail.*"]}}, "action": {"tool": "shell.exec"}}`, "policy", "eval", "--point", "list", "--input", "-")
	if code != 0 || !strings.Contains(out, `"effect": "deny"`) {
		t.Errorf("eval from stdin: %d %q", code, out)
	}
}

func TestPolicyEvalReplay(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	store, err := policy.NewDirStore(filepath.Join(dataDir, "policies"))
	if err != nil {
		t.Fatal(err)
	}
	src, _ := policy.DefaultPack("cedar")
	v := policy.Version(src)
	if err := store.Put(ctx, v, src); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join("testdata", "policy", "action-stepup.json")
	code, out, errs := runPolicyCLI(t, "", "policy", "eval", "--point", "action", "--input", in, "--version", v, "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, `"policy_version": "`+v+`"`) || !strings.Contains(out, `"engine": "cedar"`) {
		t.Fatalf("replay: %d %q %q", code, out, errs)
	}
	missing := policy.Version(policy.Sources{Engine: "rego"})
	code, _, errs = runPolicyCLI(t, "", "policy", "eval", "--point", "action", "--input", in, "--version", missing, "--data-dir", dataDir)
	if code != 1 || !strings.Contains(errs, "not found") || !strings.Contains(errs, "writ: hint:") {
		t.Fatalf("replay of a missing version: %d %q", code, errs)
	}
}

func TestPolicyUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"policy", "eval", "--input", "x.json"}, 2, "--point"},
		{[]string{"policy", "eval", "--point", "act", "--input", "x.json"}, 2, "unknown decision point"},
		{[]string{"policy", "eval", "--point", "action"}, 2, "missing --input"},
		{[]string{"policy", "eval", "--point", "action", "--input", filepath.Join("testdata", "policy", "typo.json")}, 1, `unknown field "acton"`},
		{[]string{"policy", "version"}, 2, "missing arguments"},
		{[]string{"policy", "version", "--engine", "opa", "."}, 2, "want rego or cedar"},
		{[]string{"policy", "check", filepath.Join("testdata", "policy")}, 1, "no .rego or .cedar files"},
		{[]string{"policy", "init", "--engine", "xacml", "d"}, 2, "want rego or cedar"},
	}
	for _, tt := range tests {
		code, _, errs := runPolicyCLI(t, "", tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.want) {
			t.Errorf("writ %s: exit %d, stderr %q; want exit %d mentioning %q", strings.Join(tt.args, " "), code, errs, tt.code, tt.want)
		}
	}
}
