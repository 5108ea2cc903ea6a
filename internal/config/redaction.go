package config

import (
	"fmt"

	"github.com/writhq/writ/internal/redact"
)

// RedactionConfig adds to the redaction writ always applies to tool
// arguments and outputs before they are stored (package redact). The
// built-in keys and credential detectors cannot be switched off.
type RedactionConfig struct {
	// Keys are more member names redacted at any depth, compared like the
	// built-in ones (case and '-', '_', '.' ignored).
	Keys []string `yaml:"keys"`
	// Paths are more path patterns, such as "arguments.**.ssn" or
	// "output.items[*].card".
	Paths []string `yaml:"paths"`
}

// Engine returns the redaction engine these settings describe.
func (r RedactionConfig) Engine() (*redact.Engine, error) {
	return redact.New(redact.Config{Keys: r.Keys, Paths: r.Paths})
}

// Validate reports a key or path that cannot be used.
func (r RedactionConfig) Validate() error {
	if err := (redact.Config{Keys: r.Keys, Paths: r.Paths}).Validate(); err != nil {
		return fmt.Errorf("redaction: %w", err)
	}
	return nil
}
