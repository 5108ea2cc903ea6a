package proxy

import (
	"net/http"
	"strings"

	"github.com/writhq/writ/internal/config"
)

// hopHeaders are never passed on in either direction (RFC 9110 §7.6.1),
// nor are the headers a Connection header names, nor Proxy-*.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// forwardList is the canonical form of an upstream's forward_headers, or
// the default list when it has none.
func forwardList(configured []string) []string {
	if len(configured) == 0 {
		configured = config.DefaultForwardHeaders
	}
	out := make([]string, 0, len(configured))
	for _, h := range configured {
		out = append(out, http.CanonicalHeaderKey(h))
	}
	return out
}

// requestHeaders are the agent's headers that go upstream: only those on
// allow, and of those none that the request's Connection header makes
// hop-by-hop or that writ never forwards (config.Unforwardable: a
// configuration that lists one was refused at load, and this is the second
// fence).
func requestHeaders(in http.Header, allow []string) http.Header {
	hop := connectionNamed(in)
	out := make(http.Header, len(allow)+2)
	for _, k := range allow {
		if vs, ok := in[k]; ok && !hop[k] && config.Unforwardable(k) == "" {
			out[k] = append([]string(nil), vs...)
		}
	}
	return out
}

// dropHopHeaders removes the hop-by-hop headers of a response.
func dropHopHeaders(h http.Header) {
	for k := range connectionNamed(h) {
		h.Del(k)
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
	for k := range h {
		if strings.HasPrefix(k, "Proxy-") {
			delete(h, k)
		}
	}
}

// connectionNamed is the set of headers the Connection header names.
func connectionNamed(h http.Header) map[string]bool {
	named := map[string]bool{}
	for _, v := range h.Values("Connection") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				named[http.CanonicalHeaderKey(f)] = true
			}
		}
	}
	return named
}
