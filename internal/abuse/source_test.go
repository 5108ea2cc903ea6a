package abuse

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/config"
)

func TestSource(t *testing.T) {
	trusted := []string{"10.0.0.0/8", "192.0.2.1"}
	tests := []struct {
		name    string
		trusted []string
		peer    string
		xff     []string
		want    string
	}{
		{"peer by default", nil, "203.0.113.4:5000", []string{"198.51.100.1"}, "203.0.113.4"},
		{"untrusted peer's header ignored", trusted, "203.0.113.4:5000", []string{"198.51.100.1"}, "203.0.113.4"},
		{"trusted proxy names the client", trusted, "10.1.2.3:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies", trusted, "10.1.2.3:5000", []string{"198.51.100.1, 192.0.2.1", "10.9.9.9"}, "198.51.100.1"},
		{"spoofed left part not believed", trusted, "10.1.2.3:5000", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"garbage stops the walk", trusted, "10.1.2.3:5000", []string{"198.51.100.1, nonsense, 10.2.2.2"}, "10.2.2.2"},
		{"no header: the proxy itself", trusted, "10.1.2.3:5000", nil, "10.1.2.3"},
		{"IPv6 by /64", nil, "[2001:db8::1]:5000", nil, "2001:db8::/64"},
		{"IPv4-mapped is IPv4", nil, "[::ffff:203.0.113.4]:5000", nil, "203.0.113.4"},
		{"unparsable peer as is", nil, "pipe", nil, "pipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _, _ := newTestLimiter(t, func(c *config.RateLimitsConfig) { c.TrustedProxies = tt.trusted })
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := l.Source(r); got != tt.want {
				t.Errorf("Source = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzClientAddr: whatever X-Forwarded-For holds, the client is the peer
// when the peer is not trusted, and otherwise the peer or an address the
// header names; never a trusted proxy unless every hop was one.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.1", "198.51.100.1, 10.0.0.2")
	f.Add("10.0.0.1", "")
	f.Add("203.0.113.1", "10.0.0.5")
	f.Add("10.0.0.1", ",,, ,fe80::1%eth0, 2001:db8::1")
	f.Add("::ffff:10.0.0.1", "::ffff:198.51.100.1")
	f.Add("10.0.0.1", "10.0.0.2,10.0.0.3")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		p, err := netip.ParseAddr(peer)
		if err != nil {
			return
		}
		got := clientAddr(p, []string{xff}, trusted)
		if !isTrusted(p.Unmap(), trusted) {
			if got != p.Unmap() {
				t.Fatalf("untrusted peer %s: client %s", p, got)
			}
			return
		}
		if got == p.Unmap() {
			return
		}
		named := false
		for _, h := range strings.Split(xff, ",") {
			if a, err := netip.ParseAddr(strings.TrimSpace(h)); err == nil && a.Unmap() == got {
				named = true
			}
		}
		if !named {
			t.Fatalf("client %s is neither the peer nor in %q", got, xff)
		}
		if got.Zone() != "" {
			t.Fatalf("client %s has a zone", got)
		}
		if isTrusted(got, trusted) {
			// Only when every hop from the right up to the end, or to one
			// that does not parse, is a trusted proxy.
			hops := strings.Split(xff, ",")
			for i := len(hops) - 1; i >= 0; i-- {
				a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
				if err != nil || a.Zone() != "" {
					break
				}
				if !isTrusted(a.Unmap(), trusted) {
					t.Fatalf("client %s is a trusted proxy though %q names %s", got, xff, a)
				}
			}
		}
		_ = keyOf(got)
	})
}
