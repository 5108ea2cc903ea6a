package config

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// ConsoleConfig configures the web console served at /ui/.
type ConsoleConfig struct {
	// Disabled turns the console off; /ui/ then answers 404.
	Disabled bool `yaml:"disabled"`
	// PublicURL is the console's external base URL (e.g.
	// https://writ.example.com). An https URL makes session cookies Secure
	// even when TLS ends at a proxy in front of writ.
	PublicURL string `yaml:"public_url"`
	// SessionTTL bounds a signed-in session's lifetime (default 8h).
	SessionTTL time.Duration `yaml:"session_ttl"`
	// IdleTimeout ends a session not used for this long (default 30m).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// OIDC configures sign-in with an OpenID Connect provider.
	OIDC ConsoleOIDCConfig `yaml:"oidc"`
}

// ConsoleOIDCConfig is the console's OIDC client: authorization code flow
// with PKCE against Issuer.
type ConsoleOIDCConfig struct {
	// Issuer is the provider's issuer URL; its discovery document names the
	// authorization, token and key endpoints. Empty disables OIDC sign-in.
	Issuer string `yaml:"issuer"`
	// ClientID is the console's client ID at the provider.
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the client secret; empty for a public client
	// (PKCE alone).
	ClientSecretFile string `yaml:"client_secret_file"`
	// RedirectURL is the console's callback, ending in /ui/login/callback.
	RedirectURL string `yaml:"redirect_url"`
	// Scopes are requested besides openid (default profile, email).
	Scopes []string `yaml:"scopes"`
	// RolesClaim is the ID token claim holding group or role names, a
	// dotted path (default: the roles_claim of the identity.oidc entry with
	// the same issuer, else "groups").
	RolesClaim string `yaml:"roles_claim"`
	// Roles maps a writ role to the claim values that grant it (default:
	// the roles of the identity.oidc entry with the same issuer).
	Roles map[string][]string `yaml:"roles"`
}

// Bounds on console sessions.
const (
	MaxConsoleSessionTTL = 7 * 24 * time.Hour
	MinConsoleSessionTTL = time.Minute
)

// Validate reports a console setting that cannot work. Zero durations mean
// the defaults.
func (c ConsoleConfig) Validate() error {
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("console.public_url %q: want an http(s) URL", c.PublicURL)
		}
	}
	for name, d := range map[string]time.Duration{"session_ttl": c.SessionTTL, "idle_timeout": c.IdleTimeout} {
		if d != 0 && (d < MinConsoleSessionTTL || d > MaxConsoleSessionTTL) {
			return fmt.Errorf("console.%s %s: want %s to %s", name, d, MinConsoleSessionTTL, MaxConsoleSessionTTL)
		}
	}
	return c.OIDC.validate()
}

func (o ConsoleOIDCConfig) validate() error {
	if o.Issuer == "" {
		if o.ClientID != "" || o.RedirectURL != "" {
			return errors.New("console.oidc: client_id and redirect_url need an issuer")
		}
		return nil
	}
	if u, err := url.Parse(o.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("console.oidc.issuer %q: want an http(s) URL", o.Issuer)
	}
	if o.ClientID == "" {
		return errors.New("console.oidc.client_id must be set with an issuer")
	}
	u, err := url.Parse(o.RedirectURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("console.oidc.redirect_url %q: want an http(s) URL ending in /ui/login/callback", o.RedirectURL)
	}
	for role := range o.Roles {
		if !identityRoles[role] {
			return fmt.Errorf("console.oidc.roles: unknown role %q (want requester, approver, auditor or admin)", role)
		}
	}
	return nil
}
