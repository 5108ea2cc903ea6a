package resource

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Normalize returns uri in normal form (see the package doc), or an error
// saying why it is refused. The error's text does not repeat uri.
func Normalize(uri string) (string, error) { return normalize(uri, false) }

// NormalizePattern returns a scope pattern in normal form, or an error
// saying why it is refused: the rules of Normalize, with '*' allowed in
// the scheme.
func NormalizePattern(pattern string) (string, error) { return normalize(pattern, true) }

// NormalizePath returns the normal form of a URI path on its own, such as
// an HTTP request's path, by the rules of Normalize; '?' and '#' are
// refused there.
func NormalizePath(path string) (string, error) {
	if !utf8.ValidString(path) {
		return "", errors.New("is not valid UTF-8")
	}
	var stack [256]byte
	out, err := appendComponent(stack[:0], path, inPath)
	if err != nil {
		return "", err
	}
	if string(out) == path {
		return path, nil
	}
	return string(out), nil
}

// component is the part of a URI being written, which decides the
// characters it may hold unencoded.
type component int

const (
	inAuthority component = iota
	inPath
	inQuery
	inFragment
)

func normalize(s string, pattern bool) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("is not valid UTF-8")
	}
	// The split of RFC 3986 appendix B.
	rest := s
	scheme := ""
	if i := strings.IndexAny(rest, ":/?#"); i >= 0 && rest[i] == ':' {
		scheme, rest = rest[:i], rest[i+1:]
		if !validScheme(scheme, pattern) {
			return "", fmt.Errorf("has an invalid scheme %q", scheme)
		}
	}
	var stack [256]byte
	out := stack[:0]
	if scheme != "" {
		out = append(out, strings.ToLower(scheme)...)
		out = append(out, ':')
	}
	var err error
	if strings.HasPrefix(rest, "//") {
		rest = rest[2:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		out = append(out, "//"...)
		start := len(out)
		if out, err = appendComponent(out, rest[:end], inAuthority); err != nil {
			return "", err
		}
		lowerHost(out[start:])
		rest = rest[end:]
	}
	fragment, hasFragment := "", false
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest, fragment, hasFragment = rest[:i], rest[i+1:], true
	}
	query, hasQuery := "", false
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest, query, hasQuery = rest[:i], rest[i+1:], true
	}
	if out, err = appendComponent(out, rest, inPath); err != nil {
		return "", err
	}
	if hasQuery {
		out = append(out, '?')
		if out, err = appendComponent(out, query, inQuery); err != nil {
			return "", err
		}
	}
	if hasFragment {
		out = append(out, '#')
		if out, err = appendComponent(out, fragment, inFragment); err != nil {
			return "", err
		}
	}
	if string(out) == s {
		return s, nil
	}
	return string(out), nil
}

// validScheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), and '*' in a
// pattern.
func validScheme(s string, pattern bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case pattern && c == '*':
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// appendComponent appends the normal form of one component of a URI and
// checks it for dot segments.
func appendComponent(out []byte, s string, c component) ([]byte, error) {
	start := len(out)
	for i := 0; i < len(s); {
		b := s[i]
		switch {
		case b == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return nil, errors.New(`holds a "%" that is not followed by two hex digits`)
			}
			v := unhex(s[i+1])<<4 | unhex(s[i+2])
			switch {
			case v == '/':
				return nil, errors.New("holds an encoded slash (%2F)")
			case v == '\\':
				return nil, errors.New("holds an encoded backslash (%5C)")
			case v < 0x20 || v == 0x7f:
				return nil, fmt.Errorf("holds an encoded control character (%%%02X)", v)
			case isUnreserved(v):
				out = append(out, v)
			default:
				out = append(out, '%', hexDigits[v>>4], hexDigits[v&15])
			}
			i += 3
		case b >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(s[i:])
			if unicode.IsControl(r) {
				return nil, fmt.Errorf("holds the control character %U", r)
			}
			for _, x := range []byte(s[i : i+n]) {
				out = append(out, '%', hexDigits[x>>4], hexDigits[x&15])
			}
			i += n
		case b < 0x20 || b == 0x7f:
			return nil, fmt.Errorf("holds the control character %U", rune(b))
		case b == '\\':
			return nil, errors.New("holds a backslash")
		case allowed(b, c):
			out = append(out, b)
			i++
		default:
			return nil, fmt.Errorf("holds %q, which a URI may not hold unencoded", rune(b))
		}
	}
	if c != inAuthority {
		if err := checkDotSegments(out[start:], c); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkDotSegments refuses "." and ".." as path segments, and as
// components of a query or fragment.
func checkDotSegments(s []byte, c component) error {
	seps := "/"
	if c != inPath {
		seps = "/?&=;"
	}
	for len(s) > 0 {
		i := bytes.IndexAny(s, seps)
		seg := s
		if i >= 0 {
			seg, s = s[:i], s[i+1:]
		} else {
			s = nil
		}
		if c == inPath {
			// Some servers drop a segment's parameters (";x") before
			// resolving, which turns "..;x" into "..".
			if j := bytes.IndexByte(seg, ';'); j >= 0 {
				seg = seg[:j]
			}
		}
		if string(seg) == "." || string(seg) == ".." {
			where := "path"
			switch c {
			case inQuery:
				where = "query"
			case inFragment:
				where = "fragment"
			}
			return fmt.Errorf("holds a dot segment %q in its %s", string(seg), where)
		}
	}
	return nil
}

// lowerHost lower-cases the host of a normalized authority in place: the
// text after its last '@', percent-encodings excepted.
func lowerHost(a []byte) {
	i := strings.LastIndexByte(string(a), '@') + 1
	for ; i < len(a); i++ {
		switch b := a[i]; {
		case b == '%':
			i += 2
		case 'A' <= b && b <= 'Z':
			a[i] = b + ('a' - 'A')
		}
	}
}

const hexDigits = "0123456789ABCDEF"

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

func unhex(b byte) byte {
	switch {
	case b <= '9':
		return b - '0'
	case b <= 'F':
		return b - 'A' + 10
	}
	return b - 'a' + 10
}

func isUnreserved(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		b == '-' || b == '.' || b == '_' || b == '~'
}

func isSubDelim(b byte) bool { return strings.IndexByte("!$&'()*+,;=", b) >= 0 }

// allowed reports whether b may stand unencoded in component c (RFC 3986
// §3.2–3.5). '%' is handled by the caller.
func allowed(b byte, c component) bool {
	if isUnreserved(b) || isSubDelim(b) || b == ':' || b == '@' {
		return true
	}
	switch c {
	case inAuthority:
		return b == '[' || b == ']'
	case inPath:
		return b == '/'
	case inQuery:
		return b == '/' || b == '?'
	case inFragment:
		return b == '/' || b == '?'
	}
	return false
}

// EscapePath percent-encodes s for use as path text: every byte that a
// path may not hold unencoded, '%' included, is encoded; '/' is kept. A
// name made into a resource this way (an MCP tool, a proxied path's
// wildcard) cannot add a query, a fragment or an encoding to it, and its
// "." and ".." stay dot segments, which Normalize refuses.
func EscapePath(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !allowed(s[i], inPath) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	out := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		if b := s[i]; allowed(b, inPath) {
			out = append(out, b)
		} else {
			out = append(out, '%', hexDigits[b>>4], hexDigits[b&15])
		}
	}
	return string(out)
}
