// Package bearer holds what writ's OAuth-style refusals share: error text
// that is safe to put in an RFC 6749 / RFC 6750 error_description and a
// WWW-Authenticate header, whatever an attacker put in a token.
package bearer

import "strings"

// Text keeps only the characters RFC 6749 and RFC 6750 allow in
// error_description (%x20-21 / %x23-5B / %x5D-7E): quotes become ',
// backslashes /, anything else ?.
func Text(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteByte('\'')
		case r == '\\':
			b.WriteByte('/')
		case r >= 0x20 && r <= 0x7e:
			b.WriteRune(r)
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

// MaxClaim is how much of an untrusted value Claim keeps.
const MaxClaim = 96

// Claim shortens an untrusted value (a claim, a header) to MaxClaim bytes and
// makes it safe with Text, for quoting in an error.
func Claim(s string) string {
	if len(s) > MaxClaim {
		s = s[:MaxClaim] + "..."
	}
	return Text(s)
}
