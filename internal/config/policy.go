package config

import (
	"fmt"
	"time"
)

// PolicyConfig configures the policy engine.
type PolicyConfig struct {
	// Dir is a policy bundle directory; empty means the embedded default pack.
	Dir string `yaml:"dir"`
	// Engine is "rego" or "cedar"; empty means detect from the bundle's files.
	Engine string `yaml:"engine"`
	// Timeout bounds one evaluation; past it the decision is deny.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultPolicy returns the policy defaults.
func DefaultPolicy() PolicyConfig {
	return PolicyConfig{Timeout: 50 * time.Millisecond}
}

// Validate reports a policy setting that cannot work.
func (p PolicyConfig) Validate() error {
	switch p.Engine {
	case "", "rego", "cedar":
	default:
		return fmt.Errorf("policy.engine %q: want rego or cedar", p.Engine)
	}
	if p.Timeout <= 0 {
		return fmt.Errorf("policy.timeout %s: must be positive", p.Timeout)
	}
	return nil
}
