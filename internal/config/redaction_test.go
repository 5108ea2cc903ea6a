package config

import (
	"strings"
	"testing"
)

func TestRedactionSettings(t *testing.T) {
	c := loadYAML(t, "redaction:\n  keys: [SSN]\n  paths: [\"arguments.**.iban\"]\n", nil)
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
