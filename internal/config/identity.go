package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// IdentityConfig configures how agents and humans prove who they are: SPIFFE
// trust domains for agent workloads (JWT-SVIDs and X.509-SVIDs) and OIDC
// issuers for humans and for agents that carry OIDC tokens.
type IdentityConfig struct {
	// Audience lists the values writ accepts in a token's "aud" claim; a token
	// must name at least one of them.
	Audience []string `yaml:"audience"`
	// ClockSkew is how far the clocks of token issuers and writ may disagree
	// when checking exp, nbf and iat.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// MaxTokenBytes bounds a bearer token's length; longer ones are refused
	// before any parsing.
	MaxTokenBytes int `yaml:"max_token_bytes"`
	// CacheSize bounds the number of verified tokens remembered (keyed by their
	// SHA-256) so repeated requests skip signature checks. 0 disables the cache.
	CacheSize int `yaml:"cache_size"`
	// CacheMaxAge bounds how long one verified token is remembered, so a key
	// removed from a trust bundle stops being honoured within this time even for
	// tokens that expire later.
	CacheMaxAge time.Duration `yaml:"cache_max_age"`

	SPIFFE SPIFFEConfig       `yaml:"spiffe"`
	OIDC   []OIDCIssuerConfig `yaml:"oidc"`
}

// SPIFFEConfig names the SPIFFE trust domains whose workloads writ accepts.
type SPIFFEConfig struct {
	// WorkloadAPISocket is the SPIFFE Workload API address (unix:///path) used
	// by trust domains whose bundle comes from the Workload API.
	WorkloadAPISocket string `yaml:"workload_api_socket"`
	// TrustDomains lists every trusted trust domain. SVIDs from any other trust
	// domain are refused, even when the Workload API knows its bundle.
	TrustDomains []TrustDomainConfig `yaml:"trust_domains"`
	// Roles maps a role to the SPIFFE IDs that hold it. An entry ending in "/*"
	// matches every ID under that path, e.g. spiffe://example.org/orchestrator/*.
	Roles map[string][]string `yaml:"roles"`
}

// TrustDomainConfig is one trusted SPIFFE trust domain and where its bundle
// comes from. Exactly one of BundleFile, BundleEndpoint and WorkloadAPI is set.
type TrustDomainConfig struct {
	// Name is the trust domain, e.g. example.org.
	Name string `yaml:"name"`
	// BundleFile is a SPIFFE bundle or plain JWKS file, read at start.
	BundleFile string `yaml:"bundle_file"`
	// BundleEndpoint is an https_web SPIFFE bundle endpoint URL, polled as the
	// bundle's refresh hint asks (BundleRefresh when it gives none).
	BundleEndpoint string `yaml:"bundle_endpoint"`
	// BundleEndpointCAFile holds PEM roots for the endpoint's TLS certificate;
	// empty means the system roots.
	BundleEndpointCAFile string `yaml:"bundle_endpoint_ca_file"`
	// BundleRefresh is the polling interval when the endpoint gives no hint.
	BundleRefresh time.Duration `yaml:"bundle_refresh"`
	// WorkloadAPI takes the bundle from the SPIFFE Workload API.
	WorkloadAPI bool `yaml:"workload_api"`
}

// OIDCIssuerConfig is one trusted OIDC issuer.
type OIDCIssuerConfig struct {
	// Issuer must equal the tokens' "iss" claim exactly. With no JWKSFile it is
	// an https URL whose discovery document names the JWKS.
	Issuer string `yaml:"issuer"`
	// JWKSFile is a static JWKS for offline use; it disables discovery.
	JWKSFile string `yaml:"jwks_file"`
	// Audience overrides identity.audience for this issuer.
	Audience []string `yaml:"audience"`
	// Kind is "human" (default) or "agent": what this issuer's subjects are.
	Kind string `yaml:"kind"`
	// RolesClaim is the claim holding group or role names, a dotted path into
	// nested objects (e.g. realm_access.roles). Default "groups".
	RolesClaim string `yaml:"roles_claim"`
	// Roles maps a writ role to the claim values that grant it.
	Roles map[string][]string `yaml:"roles"`
}

// Roles writ knows. Keys of the roles maps must be one of these.
var identityRoles = map[string]bool{"requester": true, "approver": true, "auditor": true, "admin": true}

// Bounds on identity settings.
const (
	MinTokenBytes = 1 << 10
	MaxTokenBytes = 64 << 10
	MaxClockSkew  = 5 * time.Minute
)

// DefaultIdentity returns the identity defaults.
func DefaultIdentity() IdentityConfig {
	return IdentityConfig{
		Audience:      []string{"writ"},
		ClockSkew:     30 * time.Second,
		MaxTokenBytes: 16 << 10,
		CacheSize:     10000,
		CacheMaxAge:   5 * time.Minute,
	}
}

// Validate reports an identity setting that cannot work.
func (c IdentityConfig) Validate() error {
	if len(c.Audience) == 0 {
		return errors.New("identity.audience must name at least one audience")
	}
	for _, a := range c.Audience {
		if a == "" {
			return errors.New("identity.audience: empty entry")
		}
	}
	if c.ClockSkew < 0 || c.ClockSkew > MaxClockSkew {
		return fmt.Errorf("identity.clock_skew %s: want 0 to %s", c.ClockSkew, MaxClockSkew)
	}
	if c.MaxTokenBytes < MinTokenBytes || c.MaxTokenBytes > MaxTokenBytes {
		return fmt.Errorf("identity.max_token_bytes %d: want %d to %d", c.MaxTokenBytes, MinTokenBytes, MaxTokenBytes)
	}
	if c.CacheSize < 0 || c.CacheSize > 1_000_000 {
		return fmt.Errorf("identity.cache_size %d: want 0 to 1000000", c.CacheSize)
	}
	if c.CacheSize > 0 && (c.CacheMaxAge <= 0 || c.CacheMaxAge > time.Hour) {
		return fmt.Errorf("identity.cache_max_age %s: want more than 0 and at most 1h", c.CacheMaxAge)
	}
	if err := c.SPIFFE.validate(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, o := range c.OIDC {
		if err := o.validate(); err != nil {
			return fmt.Errorf("identity.oidc[%d]: %w", i, err)
		}
		if seen[o.Issuer] {
			return fmt.Errorf("identity.oidc[%d]: issuer %q listed twice", i, o.Issuer)
		}
		seen[o.Issuer] = true
	}
	return nil
}

func (s SPIFFEConfig) validate() error {
	seen := map[string]bool{}
	for i, td := range s.TrustDomains {
		if err := validTrustDomainName(td.Name); err != nil {
			return fmt.Errorf("identity.spiffe.trust_domains[%d]: %w", i, err)
		}
		if seen[td.Name] {
			return fmt.Errorf("identity.spiffe.trust_domains[%d]: %q listed twice", i, td.Name)
		}
		seen[td.Name] = true
		n := 0
		for _, set := range []bool{td.BundleFile != "", td.BundleEndpoint != "", td.WorkloadAPI} {
			if set {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("identity.spiffe.trust_domains[%d] %s: set exactly one of bundle_file, bundle_endpoint, workload_api", i, td.Name)
		}
		if td.BundleEndpoint != "" {
			u, err := url.Parse(td.BundleEndpoint)
			if err != nil || u.Scheme != "https" || u.Host == "" {
				return fmt.Errorf("identity.spiffe.trust_domains[%d] %s: bundle_endpoint %q: want an https URL", i, td.Name, td.BundleEndpoint)
			}
		}
		if td.BundleRefresh < 0 {
			return fmt.Errorf("identity.spiffe.trust_domains[%d] %s: bundle_refresh must not be negative", i, td.Name)
		}
		if td.WorkloadAPI && s.WorkloadAPISocket == "" {
			return fmt.Errorf("identity.spiffe.trust_domains[%d] %s: workload_api needs identity.spiffe.workload_api_socket", i, td.Name)
		}
	}
	if s.WorkloadAPISocket != "" && !strings.HasPrefix(s.WorkloadAPISocket, "unix://") && !strings.HasPrefix(s.WorkloadAPISocket, "tcp://") {
		return fmt.Errorf("identity.spiffe.workload_api_socket %q: want unix:///path or tcp://host:port", s.WorkloadAPISocket)
	}
	for role, ids := range s.Roles {
		if !identityRoles[role] {
			return fmt.Errorf("identity.spiffe.roles: unknown role %q (want requester, approver, auditor or admin)", role)
		}
		for _, id := range ids {
			if !strings.HasPrefix(id, "spiffe://") {
				return fmt.Errorf("identity.spiffe.roles.%s: %q is not a SPIFFE ID", role, id)
			}
		}
	}
	return nil
}

func (o OIDCIssuerConfig) validate() error {
	if o.Issuer == "" {
		return errors.New("issuer must not be empty")
	}
	// The stable ID is oidc:<issuer>#<sub>; an issuer with '#' would make it ambiguous.
	if strings.ContainsAny(o.Issuer, "# \t\r\n") {
		return fmt.Errorf("issuer %q must not contain '#' or white space", o.Issuer)
	}
	if o.JWKSFile == "" {
		u, err := url.Parse(o.Issuer)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("issuer %q: discovery needs an https URL (or set jwks_file)", o.Issuer)
		}
	}
	switch o.Kind {
	case "", "human", "agent":
	default:
		return fmt.Errorf("kind %q: want human or agent", o.Kind)
	}
	for role := range o.Roles {
		if !identityRoles[role] {
			return fmt.Errorf("roles: unknown role %q (want requester, approver, auditor or admin)", role)
		}
	}
	for _, a := range o.Audience {
		if a == "" {
			return errors.New("audience: empty entry")
		}
	}
	return nil
}

// validTrustDomainName checks the SPIFFE trust domain name grammar: lower-case
// letters, digits, '.', '-' and '_'.
func validTrustDomainName(s string) error {
	if s == "" {
		return errors.New("trust domain name must not be empty")
	}
	if len(s) > 255 {
		return fmt.Errorf("trust domain %q is too long", s)
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
		default:
			return fmt.Errorf("trust domain %q: only lower-case letters, digits, '.', '-' and '_' (no scheme)", s)
		}
	}
	return nil
}
