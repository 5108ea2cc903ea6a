package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// RateLimitsConfig bounds how often writ serves each caller and how much
// of the ledger refusals may fill (internal/abuse). Each class is a token
// bucket; a rate of 0 turns that class off.
type RateLimitsConfig struct {
	// Unauthenticated limits, per client address, requests that present
	// no credential at all (public endpoints, the console, probes).
	Unauthenticated Rate `yaml:"unauthenticated"`
	// Failed limits, per client address, refused credentials. An address
	// past it is answered 429 before its next credential is checked.
	Failed Rate `yaml:"failed"`
	// Principal limits, per authenticated principal (a human, or the agent
	// acting with a task token), what that principal may ask. Off by
	// default: a principal is already bounded by its token and policy.
	Principal Rate `yaml:"principal"`
	// MaxKeys bounds the addresses or principals each class tracks. Idle
	// ones are forgotten; past the bound, new ones share one bucket.
	MaxKeys int `yaml:"max_keys"`
	// TrustedProxies lists the addresses or CIDR prefixes of reverse
	// proxies whose X-Forwarded-For names the client. Empty: the client is
	// always the TCP peer.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Rejections bounds the auth.rejected events refusals write.
	Rejections RejectionsConfig `yaml:"rejections"`
}

// Rate is a token bucket: PerSecond tokens a second, at most Burst saved.
type Rate struct {
	PerSecond float64 `yaml:"per_second"`
	Burst     int     `yaml:"burst"`
}

// Off reports whether the bucket limits nothing.
func (r Rate) Off() bool { return r.PerSecond == 0 }

// RejectionsConfig bounds the refusals recorded one by one.
type RejectionsConfig struct {
	// PerSource is how many refused credentials from one client address
	// are recorded one by one in each interval; the rest of that interval
	// is recorded as one summary auth.rejected event when it ends.
	PerSource int `yaml:"per_source"`
	// Interval is the length of that window.
	Interval time.Duration `yaml:"interval"`
	// MaxSources bounds the addresses counted in one interval; past it,
	// refusals from new addresses go into one summary under source "*".
	MaxSources int `yaml:"max_sources"`
}

// DefaultRateLimits returns the rate-limit defaults: tight for traffic
// that presents no credential or a refused one, none per principal.
func DefaultRateLimits() RateLimitsConfig {
	return RateLimitsConfig{
		Unauthenticated: Rate{PerSecond: 10, Burst: 100},
		Failed:          Rate{PerSecond: 1, Burst: 100},
		MaxKeys:         50_000,
		Rejections:      RejectionsConfig{PerSource: 100, Interval: time.Minute, MaxSources: 10_000},
	}
}

// Validate reports a rate-limit setting that cannot work.
func (c RateLimitsConfig) Validate() error {
	for _, r := range []struct {
		name string
		Rate
	}{{"unauthenticated", c.Unauthenticated}, {"failed", c.Failed}, {"principal", c.Principal}} {
		if r.PerSecond < 0 || r.PerSecond > 1e6 {
			return fmt.Errorf("rate_limits.%s.per_second %g: want 0 (off) to 1000000", r.name, r.PerSecond)
		}
		if !r.Off() && (r.Burst < 1 || r.Burst > 10_000_000) {
			return fmt.Errorf("rate_limits.%s.burst %d: want 1 to 10000000", r.name, r.Burst)
		}
	}
	if c.MaxKeys < 1 || c.MaxKeys > 10_000_000 {
		return fmt.Errorf("rate_limits.max_keys %d: want 1 to 10000000", c.MaxKeys)
	}
	if _, err := c.TrustedPrefixes(); err != nil {
		return err
	}
	r := c.Rejections
	switch {
	case r.PerSource < 0 || r.PerSource > 1_000_000:
		return fmt.Errorf("rate_limits.rejections.per_source %d: want 0 to 1000000", r.PerSource)
	case r.Interval < time.Second || r.Interval > time.Hour:
		return fmt.Errorf("rate_limits.rejections.interval %s: want 1s to 1h", r.Interval)
	case r.MaxSources < 1 || r.MaxSources > 1_000_000:
		return fmt.Errorf("rate_limits.rejections.max_sources %d: want 1 to 1000000", r.MaxSources)
	}
	return nil
}

// TrustedPrefixes parses TrustedProxies: each entry an address (a prefix
// of its full length) or a CIDR prefix.
func (c RateLimitsConfig) TrustedPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("rate_limits.trusted_proxies: %q: want an IP address or a CIDR prefix such as 10.0.0.0/8", s)
		}
		out = append(out, p.Masked())
	}
	if len(out) > 1024 {
		return nil, errors.New("rate_limits.trusted_proxies: at most 1024 entries")
	}
	return out, nil
}
