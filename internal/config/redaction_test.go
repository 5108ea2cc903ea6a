package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRedactionSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "writ.yaml")
	os.WriteFile(path, []byte("redaction:\n  keys: [SSN]\n  paths: [\"arguments.**.iban\"]\n"), 0o600)
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := c.Redaction.Engine()
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := e.Redact("arguments", []byte(`{"a":{"iban":"DE1"},"ssn":"1","password":"p"}`), nil)
	if err != nil || string(got) != `{"a":{"iban":"[redacted]"},"password":"[redacted]","ssn":"[redacted]"}` {
		t.Errorf("redacted %s, %v", got, err)
	}
	for _, bad := range []RedactionConfig{{Paths: []string{"arguments..iban"}}, {Keys: []string{"--"}}} {
		c := Default()
		c.Redaction = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "redaction") {
			t.Errorf("Validate(%+v) = %v, want a redaction error", bad, err)
		}
	}
}
