package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeYAML writes yaml to a config file in a fresh directory and returns
// its path.
func writeYAML(t testing.TB, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "writ.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadYAML loads yaml as a config file, under the environment env.
func loadYAML(t testing.TB, yaml string, env map[string]string) Config {
	t.Helper()
	c, err := Load(writeYAML(t, yaml), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantValid reports a failure of case name unless err is nil when want is
// "", or else an error whose text holds want.
func wantValid(t *testing.T, name string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: %v", name, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%s: error %v, want one mentioning %q", name, err, want)
	}
}
