package abuse

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Unknown is the source of a refusal whose client address is not known
// (a request that did not pass through the limiter's middleware).
const Unknown = "unknown"

type sourceKey struct{}

// WithSource returns ctx carrying the request's client address, as the
// middleware sets it for the layers that record refusals.
func WithSource(ctx context.Context, source string) context.Context {
	return context.WithValue(ctx, sourceKey{}, source)
}

// SourceFrom returns the client address the middleware found for this
// request, or Unknown.
func SourceFrom(ctx context.Context) string {
	if s, ok := ctx.Value(sourceKey{}).(string); ok && s != "" {
		return s
	}
	return Unknown
}

// PeerHost returns the host of r's TCP peer (r.RemoteAddr without its
// port), or RemoteAddr as it is when it has no port. It is the source the
// decision points give policy; X-Forwarded-For is not read.
func PeerHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// clientAddr returns the client's address: the TCP peer, unless the peer
// is a trusted proxy, in which case X-Forwarded-For is read from the right
// (the hop nearest writ) past every trusted proxy to the first address
// that is not one. A header that does not parse stops the walk at the last
// address that did, so a client cannot make itself anyone by writing
// garbage to the left of what its proxy appended.
func clientAddr(peer netip.Addr, forwarded []string, trusted []netip.Prefix) netip.Addr {
	peer = peer.Unmap()
	if !isTrusted(peer, trusted) {
		return peer
	}
	client := peer
	for i := len(forwarded) - 1; i >= 0; i-- {
		hops := strings.Split(forwarded[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil || a.Zone() != "" {
				return client
			}
			client = a.Unmap()
			if !isTrusted(client, trusted) {
				return client
			}
		}
	}
	return client
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// keyOf is the bucket key of a client address: the address itself for
// IPv4, its /64 for IPv6, since one host commonly holds a whole /64.
func keyOf(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// Source returns the key of r's client address (see clientAddr and
// keyOf); a peer address that does not parse is used as it is.
func (l *Limiter) Source(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		a, err := netip.ParseAddr(r.RemoteAddr)
		if err != nil {
			return r.RemoteAddr
		}
		ap = netip.AddrPortFrom(a, 0)
	}
	var fwd []string
	if len(l.trusted) > 0 {
		fwd = r.Header.Values("X-Forwarded-For")
	}
	return keyOf(clientAddr(ap.Addr(), fwd, l.trusted))
}
