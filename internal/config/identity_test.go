package config

import (
	"testing"
	"time"
)

func TestIdentityValidate(t *testing.T) {
	ok := func(mod func(*IdentityConfig)) IdentityConfig {
		c := DefaultIdentity()
		c.SPIFFE.WorkloadAPISocket = "unix:///run/spire/agent.sock"
		c.SPIFFE.TrustDomains = []TrustDomainConfig{
			{Name: "example.org", WorkloadAPI: true},
			{Name: "partner.org", BundleEndpoint: "https://spire.partner.org:8443"},
			{Name: "offline.org", BundleFile: "/etc/b.json"},
		}
		c.SPIFFE.Roles = map[string][]string{"requester": {"spiffe://example.org/orch/*"}}
		c.OIDC = []OIDCIssuerConfig{
			{Issuer: "https://idp.example.com", Roles: map[string][]string{"approver": {"sec"}}},
			{Issuer: "ci", JWKSFile: "/etc/ci.jwks", Kind: "agent"},
		}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	tests := []struct {
		name string
		cfg  IdentityConfig
		want string // substring of the error; "" means valid
	}{
		{"defaults", DefaultIdentity(), ""},
		{"full", ok(nil), ""},
		{"no audience", ok(func(c *IdentityConfig) { c.Audience = nil }), "audience"},
		{"skew", ok(func(c *IdentityConfig) { c.ClockSkew = time.Hour }), "clock_skew"},
		{"token size", ok(func(c *IdentityConfig) { c.MaxTokenBytes = 100 }), "max_token_bytes"},
		{"cache age", ok(func(c *IdentityConfig) { c.CacheMaxAge = 0 }), "cache_max_age"},
		{"cache off needs no age", ok(func(c *IdentityConfig) { c.CacheSize, c.CacheMaxAge = 0, 0 }), ""},
		{"two sources", ok(func(c *IdentityConfig) { c.SPIFFE.TrustDomains[0].BundleFile = "/x" }), "exactly one"},
		{"no source", ok(func(c *IdentityConfig) { c.SPIFFE.TrustDomains[0].WorkloadAPI = false }), "exactly one"},
		{"td with scheme", ok(func(c *IdentityConfig) { c.SPIFFE.TrustDomains[2].Name = "spiffe://x" }), "trust domain"},
		{"td twice", ok(func(c *IdentityConfig) { c.SPIFFE.TrustDomains[2].Name = "example.org" }), "twice"},
		{"http endpoint", ok(func(c *IdentityConfig) { c.SPIFFE.TrustDomains[1].BundleEndpoint = "http://x" }), "https"},
		{"workload api without socket", ok(func(c *IdentityConfig) { c.SPIFFE.WorkloadAPISocket = "" }), "workload_api_socket"},
		{"bad socket", ok(func(c *IdentityConfig) { c.SPIFFE.WorkloadAPISocket = "/run/x.sock" }), "unix://"},
		{"unknown spiffe role", ok(func(c *IdentityConfig) { c.SPIFFE.Roles["root"] = nil }), "unknown role"},
		{"role not spiffe", ok(func(c *IdentityConfig) { c.SPIFFE.Roles["admin"] = []string{"bob"} }), "not a SPIFFE ID"},
		{"issuer with #", ok(func(c *IdentityConfig) { c.OIDC[1].Issuer = "a#b" }), "'#'"},
		{"discovery needs https", ok(func(c *IdentityConfig) { c.OIDC[1].JWKSFile = "" }), "https"},
		{"issuer twice", ok(func(c *IdentityConfig) { c.OIDC[1].Issuer = "https://idp.example.com" }), "twice"},
		{"kind", ok(func(c *IdentityConfig) { c.OIDC[0].Kind = "robot" }), "kind"},
		{"unknown oidc role", ok(func(c *IdentityConfig) { c.OIDC[0].Roles["owner"] = nil }), "unknown role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantValid(t, "Validate", tt.cfg.Validate(), tt.want)
		})
	}
}
