package config

import (
	"testing"
	"time"
)

func TestConsoleValidate(t *testing.T) {
	oidc := ConsoleOIDCConfig{Issuer: "https://idp.example.com", ClientID: "writ-console",
		RedirectURL: "https://writ.example.com/ui/login/callback", Roles: map[string][]string{"approver": {"writ-approvers"}}}
	for _, tc := range []struct {
		name string
		c    ConsoleConfig
		err  string // empty: valid
	}{
		{"zero", ConsoleConfig{}, ""},
		{"oidc", ConsoleConfig{PublicURL: "https://writ.example.com", OIDC: oidc}, ""},
		{"durations", ConsoleConfig{SessionTTL: time.Hour, IdleTimeout: 10 * time.Minute}, ""},
		{"short ttl", ConsoleConfig{SessionTTL: time.Second}, "console.session_ttl"},
		{"long idle", ConsoleConfig{IdleTimeout: 30 * 24 * time.Hour}, "console.idle_timeout"},
		{"public url", ConsoleConfig{PublicURL: "writ.example.com"}, "console.public_url"},
		{"client without issuer", ConsoleConfig{OIDC: ConsoleOIDCConfig{ClientID: "x"}}, "need an issuer"},
		{"no client id", ConsoleConfig{OIDC: ConsoleOIDCConfig{Issuer: oidc.Issuer, RedirectURL: oidc.RedirectURL}}, "client_id"},
		{"no redirect", ConsoleConfig{OIDC: ConsoleOIDCConfig{Issuer: oidc.Issuer, ClientID: "x"}}, "redirect_url"},
		{"bad issuer", ConsoleConfig{OIDC: ConsoleOIDCConfig{Issuer: "idp", ClientID: "x", RedirectURL: oidc.RedirectURL}}, "issuer"},
		{"unknown role", ConsoleConfig{OIDC: ConsoleOIDCConfig{Issuer: oidc.Issuer, ClientID: "x", RedirectURL: oidc.RedirectURL,
			Roles: map[string][]string{"root": {"x"}}}}, "unknown role"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantValid(t, "Validate", tc.c.Validate(), tc.err)
		})
	}
}

func TestConsoleFromYAML(t *testing.T) {
	c := loadYAML(t, `
console:
  session_ttl: 2h
  oidc:
    issuer: https://idp.example.com
    client_id: writ-console
    redirect_url: https://writ.example.com/ui/login/callback
`, nil)
	if c.Console.SessionTTL != 2*time.Hour || c.Console.OIDC.ClientID != "writ-console" {
		t.Errorf("console settings %+v", c.Console)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
