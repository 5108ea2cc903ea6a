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
	// ShadowDir is a candidate bundle evaluated beside the active one; its
	// disagreements are recorded, never enforced. Empty means no shadow.
	ShadowDir string `yaml:"shadow_dir"`
	// ShadowEngine is the candidate's engine, like Engine.
	ShadowEngine string `yaml:"shadow_engine"`
}

// DefaultPolicy returns the policy defaults.
func DefaultPolicy() PolicyConfig {
	return PolicyConfig{Timeout: 50 * time.Millisecond}
}

// Validate reports a policy setting that cannot work.
func (p PolicyConfig) Validate() error {
	for name, e := range map[string]string{"policy.engine": p.Engine, "policy.shadow_engine": p.ShadowEngine} {
		switch e {
		case "", "rego", "cedar":
		default:
			return fmt.Errorf("%s %q: want rego or cedar", name, e)
		}
	}
	if p.ShadowEngine != "" && p.ShadowDir == "" {
		return fmt.Errorf("policy.shadow_engine is set but policy.shadow_dir is empty")
	}
	if p.Timeout <= 0 {
		return fmt.Errorf("policy.timeout %s: must be positive", p.Timeout)
	}
	return nil
}
