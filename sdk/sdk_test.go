// Package sdk_test runs the TypeScript and Python SDKs' own test suites as
// part of the Go test suite, against a writ binary built from this
// repository, so that `go test ./...` is the whole suite. Each suite skips
// when its toolchain (Node with the SDK's npm packages, or Python) is
// missing, and fails then when CI is set.
package sdk_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// need skips the test without what it needs, or fails it when CI is set.
func need(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing, and CI is set: this test must run", what)
	}
	t.Skipf("%s is missing", what)
}

var (
	buildOnce sync.Once
	binDir    string
	binErr    error
	binOut    []byte
)

// writBin builds writ once for both suites.
func writBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "writ-sdk-")
		if binErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, "writ"), "./cmd/writ")
		cmd.Dir = ".."
		binOut, binErr = cmd.CombinedOutput()
	})
	if binErr != nil {
		t.Fatalf("building writ: %v\n%s", binErr, binOut)
	}
	return filepath.Join(binDir, "writ")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// run runs a suite's command in dir with WRIT_BIN set, streaming its
// output into the test log when it fails.
func run(t *testing.T, dir string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "WRIT_BIN="+writBin(t))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	t.Logf("%s", out)
}

func TestTypeScriptSDK(t *testing.T) {
	_, err := exec.LookPath("npm")
	need(t, err == nil, "npm")
	_, err = os.Stat(filepath.Join("typescript", "node_modules", ".package-lock.json"))
	need(t, err == nil, "the TypeScript SDK's npm packages (npm ci --prefix sdk/typescript)")
	run(t, "typescript", "npm", "test")
}

func TestPythonSDK(t *testing.T) {
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		py, err = exec.LookPath("python3")
		need(t, err == nil, "python3")
	}
	run(t, "python", py, "-m", "unittest", "discover", "-s", "tests")
}
