package credential

import (
	"net/url"
	"strings"
)

// IsResourceURI reports whether s can be the aud of a resource-bound token:
// an absolute http or https URI with a host, no query, fragment or user
// (RFC 8707 §2), of visible ASCII only (RFC 3986 §2), at most 2 KiB.
func IsResourceURI(s string) bool {
	if len(s) > 2048 || strings.ContainsAny(s, "?#") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}

// resourceOf is Token.Resource for an aud claim: "" for the issuer's own
// audience.
func resourceOf(aud, own string) string {
	if aud == own {
		return ""
	}
	return aud
}
