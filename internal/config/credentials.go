package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// CredentialsConfig configures the task credentials writ issues at
// POST /oauth2/token and checks on every call (docs/credentials.md).
type CredentialsConfig struct {
	// Issuer is the iss claim of writ access tokens. Empty means PublicURL
	// when that is set, else "writ".
	Issuer string `yaml:"issuer"`
	// MaxTTL is the longest lifetime of an access token, whatever policy
	// allows; tokens claiming a longer one are refused.
	MaxTTL time.Duration `yaml:"max_ttl"`
	// PublicURL is writ's base URL as agents address it
	// (https://writ.example). DPoP proofs name the request URI (htu), which
	// is this URL plus the request path. Empty derives it from each request's
	// Host header and TLS state; set it behind a proxy and in production.
	PublicURL string `yaml:"public_url"`
	// RequireBinding lists the environments where a bearer token is
	// refused: only DPoP- or mTLS-bound tokens are accepted there.
	RequireBinding []string `yaml:"require_binding"`
	// KeyFile is the token signing key (PKCS#8 PEM); empty means
	// credential.key in the data directory. Replicas sharing a store must
	// share the key.
	KeyFile string `yaml:"key_file"`
}

// DefaultCredentials returns the credential defaults: tokens live at most
// one hour and bearer tokens are accepted everywhere.
func DefaultCredentials() CredentialsConfig {
	return CredentialsConfig{MaxTTL: time.Hour}
}

// IssuerName is the iss claim to use: Issuer, else PublicURL, else "writ".
func (c CredentialsConfig) IssuerName() string {
	switch {
	case c.Issuer != "":
		return c.Issuer
	case c.PublicURL != "":
		return strings.TrimRight(c.PublicURL, "/")
	}
	return "writ"
}

// Validate reports a credential setting that cannot work.
func (c CredentialsConfig) Validate() error {
	if c.MaxTTL < time.Second || c.MaxTTL > 24*time.Hour {
		return fmt.Errorf("credentials.max_ttl %s: want 1s to 24h", c.MaxTTL)
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("credentials.public_url %q: want an http(s) URL with a host and no query, fragment or user", c.PublicURL)
		}
	}
	for _, e := range c.RequireBinding {
		if strings.TrimSpace(e) == "" {
			return errors.New("credentials.require_binding holds an empty environment name")
		}
	}
	return nil
}
