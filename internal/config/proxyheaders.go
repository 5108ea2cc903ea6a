package config

import (
	"fmt"
	"net/http"
	"strings"
)

// DefaultForwardHeaders are the request headers the HTTP proxy passes on
// to an upstream when its forward_headers is empty: content negotiation,
// conditional and range requests, and the W3C trace context. Nothing that
// can change the method, path, host or client the upstream acts on.
var DefaultForwardHeaders = []string{
	"Accept", "Accept-Language", "Content-Type", "If-Match", "If-None-Match",
	"If-Modified-Since", "If-Unmodified-Since", "If-Range", "Range", "User-Agent",
	"Traceparent", "Tracestate",
}

// unforwardable are the request headers the proxy never passes on, and
// refuses in forward_headers, each with why.
var unforwardable = map[string]string{
	// Hop-by-hop (RFC 9110 §7.6.1); Proxy-* by prefix below.
	"Connection": "hop-by-hop", "Keep-Alive": "hop-by-hop", "Te": "hop-by-hop", "Trailer": "hop-by-hop",
	"Transfer-Encoding": "hop-by-hop", "Upgrade": "hop-by-hop", "Host": "set from the upstream's url",
	// The agent's credentials stay with writ; upstream credentials come
	// from headers.
	"Authorization": "the agent's credential", "Dpop": "the agent's credential", "Cookie": "a credential of the agent's",
	// Headers frameworks and gateways read as another method, path, host
	// or client than the one policy decided on.
	"X-Http-Method-Override": "overrides the method", "X-Http-Method": "overrides the method", "X-Method-Override": "overrides the method",
	"X-Original-Url": "overrides the path", "X-Rewrite-Url": "overrides the path", "X-Original-Uri": "overrides the path",
	"X-Envoy-Original-Path": "overrides the path", "X-Original-Method": "overrides the method",
	"Forwarded": "names another client or host", "X-Real-Ip": "names another client", "X-Client-Ip": "names another client",
	"True-Client-Ip": "names another client", "Cf-Connecting-Ip": "names another client", "X-Cluster-Client-Ip": "names another client",
	"X-Original-Host": "names another host", "X-Host": "names another host",
	// Writ decides on, and records, the decoded body; it asks for and
	// decodes compressed responses itself.
	"Content-Encoding": "writ decides on unencoded bodies", "Accept-Encoding": "writ negotiates compression itself",
	"Content-Length": "set from the body writ forwards", "Expect": "writ reads the whole body before deciding",
}

// Unforwardable says why the HTTP proxy never forwards the request header
// name, or "" when it may be listed in forward_headers.
func Unforwardable(name string) string {
	k := http.CanonicalHeaderKey(name)
	if why, ok := unforwardable[k]; ok {
		return why
	}
	switch {
	case strings.HasPrefix(k, "Proxy-"):
		return "hop-by-hop"
	case strings.HasPrefix(k, "X-Forwarded-"):
		return "names another client, host, protocol or path prefix"
	}
	return ""
}

// checkForwardHeader reports a forward_headers entry writ refuses.
func checkForwardHeader(name string) error {
	if !isToken(name) {
		return fmt.Errorf("%q is not a header name", name)
	}
	if why := Unforwardable(name); why != "" {
		return fmt.Errorf("writ never forwards %s (%s)", http.CanonicalHeaderKey(name), why)
	}
	return nil
}

// isToken reports whether s is an RFC 9110 §5.6.2 token, as a field name
// must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || c <= ' ' || c == 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
