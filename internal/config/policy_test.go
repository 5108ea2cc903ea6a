package config

import (
	"testing"
	"time"
)

func TestPolicyConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		p    PolicyConfig
		want string // "" means valid
	}{
		{"defaults", DefaultPolicy(), ""},
		{"cedar with shadow rego", PolicyConfig{Engine: "cedar", Timeout: time.Millisecond, ShadowDir: "cand", ShadowEngine: "rego"}, ""},
		{"bad engine", PolicyConfig{Engine: "opa", Timeout: time.Second}, "policy.engine"},
		{"bad shadow engine", PolicyConfig{ShadowDir: "x", ShadowEngine: "xacml", Timeout: time.Second}, "policy.shadow_engine"},
		{"shadow engine without dir", PolicyConfig{ShadowEngine: "rego", Timeout: time.Second}, "shadow_dir is empty"},
		{"zero timeout", PolicyConfig{}, "policy.timeout"},
	}
	for _, tt := range tests {
		wantValid(t, tt.name, tt.p.Validate(), tt.want)
	}
}
