package jcs

import "unicode/utf8"

// plain marks the bytes a string may contain that are copied through as they
// are: printable ASCII other than '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str parses the string starting at the opening quote at p.pos, writes its
// canonical form to p.out and, for member names, its decoded form to p.keys.
func (p *parser) str(key bool) error {
	start := p.pos
	p.pos++
	p.out = append(p.out, '"')
	for {
		// Copy the run of bytes that need no attention in one go.
		i := p.pos
		for i < len(p.in) && plain[p.in[i]] {
			i++
		}
		p.out = append(p.out, p.in[p.pos:i]...)
		if key {
			p.keys = append(p.keys, p.in[p.pos:i]...)
		}
		p.pos = i
		if i >= len(p.in) {
			return p.fail(start, ErrSyntax, "unterminated string")
		}
		switch c := p.in[i]; {
		case c == '"':
			p.pos++
			p.out = append(p.out, '"')
			return nil
		case c == '\\':
			r, err := p.escape()
			if err != nil {
				return err
			}
			p.emitRune(r, key)
		case c < 0x20:
			return p.fail(i, ErrSyntax, "unescaped control character in string")
		default:
			r, size := utf8.DecodeRune(p.in[i:])
			if r == utf8.RuneError && size == 1 {
				return p.fail(i, ErrInvalidUnicode, "invalid UTF-8 in string")
			}
			p.out = append(p.out, p.in[i:i+size]...)
			if key {
				p.keys = append(p.keys, p.in[i:i+size]...)
			}
			p.pos += size
		}
	}
}

// escape decodes the escape sequence at p.pos, joining a \u surrogate pair
// into one rune.
func (p *parser) escape() (rune, error) {
	at := p.pos
	if at+1 >= len(p.in) {
		return 0, p.fail(at, ErrSyntax, "unterminated string")
	}
	p.pos += 2
	switch p.in[at+1] {
	case '"':
		return '"', nil
	case '\\':
		return '\\', nil
	case '/':
		return '/', nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
	default:
		return 0, p.fail(at, ErrSyntax, "invalid escape sequence in string")
	}
	r, ok := p.hex4()
	if !ok {
		return 0, p.fail(at, ErrSyntax, "invalid \\u escape in string")
	}
	switch {
	case r >= 0xDC00 && r <= 0xDFFF:
		return 0, p.fail(at, ErrInvalidUnicode, "unpaired low surrogate in \\u escape")
	case r >= 0xD800 && r <= 0xDBFF:
		if len(p.in)-p.pos < 2 || p.in[p.pos] != '\\' || p.in[p.pos+1] != 'u' {
			return 0, p.fail(at, ErrInvalidUnicode, "unpaired high surrogate in \\u escape")
		}
		p.pos += 2
		lo, ok := p.hex4()
		if !ok {
			return 0, p.fail(p.pos-2, ErrSyntax, "invalid \\u escape in string")
		}
		if lo < 0xDC00 || lo > 0xDFFF {
			return 0, p.fail(at, ErrInvalidUnicode, "unpaired high surrogate in \\u escape")
		}
		return 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00), nil
	}
	return r, nil
}

// hex4 reads four hexadecimal digits at p.pos.
func (p *parser) hex4() (rune, bool) {
	if len(p.in)-p.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.in[p.pos : p.pos+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	p.pos += 4
	return r, true
}

// emitRune writes r in canonical string form: literal UTF-8 except for the
// characters RFC 8785 requires to be escaped.
func (p *parser) emitRune(r rune, key bool) {
	if key {
		p.keys = utf8.AppendRune(p.keys, r)
	}
	p.out = appendRune(p.out, r)
}

func appendRune(dst []byte, r rune) []byte {
	switch r {
	case '"':
		return append(dst, '\\', '"')
	case '\\':
		return append(dst, '\\', '\\')
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	if r < 0x20 {
		const hex = "0123456789abcdef"
		return append(dst, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xF])
	}
	return utf8.AppendRune(dst, r)
}

// AppendString appends s as a canonical JSON string, quotes included. It
// reports false, leaving dst unchanged, when s is not valid UTF-8.
func AppendString(dst []byte, s string) ([]byte, bool) {
	if !utf8.ValidString(s) {
		return dst, false
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			// Runs of plain ASCII are copied as they are.
			j := i + 1
			for j < len(s) && s[j] >= 0x20 && s[j] != '"' && s[j] != '\\' && s[j] < utf8.RuneSelf {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		dst = appendRune(dst, r)
		i += n
	}
	return append(dst, '"'), true
}
