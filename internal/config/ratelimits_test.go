package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestRateLimitsLoadAndValidate(t *testing.T) {
	c := loadYAML(t, `
rate_limits:
  unauthenticated: {per_second: 2.5, burst: 20}
  principal: {per_second: 500, burst: 1000}
  trusted_proxies: [10.0.0.0/8, 192.0.2.1, "2001:db8::/32"]
  rejections: {per_source: 10, interval: 30s}
`, nil)
	r := c.RateLimits
	if r.Unauthenticated != (Rate{2.5, 20}) || r.Principal != (Rate{500, 1000}) || r.Failed != DefaultRateLimits().Failed ||
		r.Rejections.PerSource != 10 || r.Rejections.Interval != 30*time.Second || r.Rejections.MaxSources != 10_000 {
		t.Errorf("loaded %+v", r)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if p, _ := r.TrustedPrefixes(); len(p) != 3 || p[1] != netip.MustParsePrefix("192.0.2.1/32") {
		t.Errorf("trusted prefixes %v", p)
	}
	for _, tt := range []struct {
		mut  func(*RateLimitsConfig)
		want string
	}{
		{func(c *RateLimitsConfig) { c.Failed.PerSecond = -1 }, "rate_limits.failed.per_second"},
		{func(c *RateLimitsConfig) { c.Principal = Rate{PerSecond: 5} }, "rate_limits.principal.burst"},
		{func(c *RateLimitsConfig) { c.MaxKeys = 0 }, "rate_limits.max_keys"},
		{func(c *RateLimitsConfig) { c.TrustedProxies = []string{"proxy.example"} }, "rate_limits.trusted_proxies"},
		{func(c *RateLimitsConfig) { c.Rejections.Interval = time.Millisecond }, "rate_limits.rejections.interval"},
		{func(c *RateLimitsConfig) { c.Rejections.MaxSources = 0 }, "rate_limits.rejections.max_sources"},
	} {
		c := DefaultRateLimits()
		tt.mut(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate = %v, want an error naming %s", err, tt.want)
		}
	}
}

// FuzzTrustedPrefixes: an entry is refused or parsed into a prefix that
// holds the address it names.
func FuzzTrustedPrefixes(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "::ffff:10.0.0.1", "fe80::1%eth0", "10.0.0.1/33", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := RateLimitsConfig{TrustedProxies: []string{s}}.TrustedPrefixes()
		if err != nil {
			return
		}
		if len(ps) != 1 || !ps[0].IsValid() {
			t.Fatalf("%q: %v", s, ps)
		}
		addr, _, _ := strings.Cut(s, "/")
		if a, err := netip.ParseAddr(addr); err == nil && !ps[0].Contains(a) && a.Zone() == "" {
			t.Fatalf("%q parsed to %s, which does not hold %s", s, ps[0], a)
		}
	})
}
