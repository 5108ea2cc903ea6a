package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCredentialsValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*CredentialsConfig)
		wantErr string
	}{
		{"defaults", func(*CredentialsConfig) {}, ""},
		{"public url", func(c *CredentialsConfig) { c.PublicURL = "https://writ.example:8443/base" }, ""},
		{"ttl too short", func(c *CredentialsConfig) { c.MaxTTL = 500 * time.Millisecond }, "credentials.max_ttl"},
		{"ttl too long", func(c *CredentialsConfig) { c.MaxTTL = 25 * time.Hour }, "credentials.max_ttl"},
		{"url without scheme", func(c *CredentialsConfig) { c.PublicURL = "writ.example" }, "credentials.public_url"},
		{"url with query", func(c *CredentialsConfig) { c.PublicURL = "https://writ.example/?a=b" }, "credentials.public_url"},
		{"url with user", func(c *CredentialsConfig) { c.PublicURL = "https://u:p@writ.example" }, "credentials.public_url"},
		{"empty environment", func(c *CredentialsConfig) { c.RequireBinding = []string{"prod", " "} }, "require_binding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultCredentials()
			tt.edit(&c)
			wantValid(t, "Validate", c.Validate(), tt.wantErr)
		})
	}
}

func TestCredentialsIssuerName(t *testing.T) {
	tests := []struct {
		c    CredentialsConfig
		want string
	}{
		{CredentialsConfig{}, "writ"},
		{CredentialsConfig{PublicURL: "https://writ.example/"}, "https://writ.example"},
		{CredentialsConfig{Issuer: "urn:writ", PublicURL: "https://writ.example"}, "urn:writ"},
	}
	for _, tt := range tests {
		if got := tt.c.IssuerName(); got != tt.want {
			t.Errorf("%+v.IssuerName() = %q, want %q", tt.c, got, tt.want)
		}
	}
}

func TestCredentialsLoad(t *testing.T) {
	c := loadYAML(t, "credentials:\n  issuer: urn:writ\n  max_ttl: 10m\n  public_url: https://writ.example\n  require_binding: [prod, staging]\nrepair_projections: true\n",
		map[string]string{"WRIT_CREDENTIALS_MAX_TTL": "20m"})
	want := CredentialsConfig{Issuer: "urn:writ", MaxTTL: 20 * time.Minute, PublicURL: "https://writ.example",
		RequireBinding: []string{"prod", "staging"}}
	if diff := cmp.Diff(want, c.Credentials); diff != "" {
		t.Errorf("credentials (-want +got):\n%s", diff)
	}
	if !c.RepairProjections {
		t.Error("repair_projections not read")
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
