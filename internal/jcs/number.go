package jcs

import (
	"errors"
	"strconv"
)

// number parses the JSON number at p.pos and writes it in ECMAScript form.
func (p *parser) number() error {
	start := p.pos
	i := start
	if p.in[i] == '-' {
		i++
	}
	switch {
	case i < len(p.in) && p.in[i] == '0':
		i++
	case i < len(p.in) && '1' <= p.in[i] && p.in[i] <= '9':
		for i < len(p.in) && isDigit(p.in[i]) {
			i++
		}
	default:
		return p.fail(start, ErrSyntax, "invalid number, expected a digit")
	}
	intDigits := i - start
	integer := true
	if i < len(p.in) && p.in[i] == '.' {
		integer = false
		i++
		if i >= len(p.in) || !isDigit(p.in[i]) {
			return p.fail(start, ErrSyntax, "invalid number, expected a digit after '.'")
		}
		for i < len(p.in) && isDigit(p.in[i]) {
			i++
		}
	}
	if i < len(p.in) && (p.in[i] == 'e' || p.in[i] == 'E') {
		integer = false
		i++
		if i < len(p.in) && (p.in[i] == '+' || p.in[i] == '-') {
			i++
		}
		if i >= len(p.in) || !isDigit(p.in[i]) {
			return p.fail(start, ErrSyntax, "invalid number, expected a digit in exponent")
		}
		for i < len(p.in) && isDigit(p.in[i]) {
			i++
		}
	}
	p.pos = i
	lit := p.in[start:i]
	if lit[0] == '-' {
		intDigits--
	}

	// An integer of at most 15 digits is exactly a double and ECMAScript
	// prints it digit for digit; JSON already forbids leading zeros.
	if integer && intDigits <= 15 {
		if len(lit) == 2 && lit[0] == '-' && lit[1] == '0' {
			lit = lit[1:] // -0 prints as 0
		}
		p.out = append(p.out, lit...)
		return nil
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return p.fail(start, ErrNumberRange, "number too large for a finite double")
		}
		return p.fail(start, ErrSyntax, "invalid number")
	}
	p.out = appendNumber(p.out, f)
	return nil
}

// appendNumber appends f as ECMAScript's Number.prototype.toString writes it
// (ECMA-262, Number::toString), which RFC 8785 adopts: the shortest decimal
// digits that round-trip, laid out in plain or exponent notation by the
// position of the decimal point. f must be finite.
func appendNumber(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0') // both +0 and -0
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	// strconv's shortest formatting yields the digits ECMAScript asks for:
	// the fewest that read back as f, the closest to f among those.
	var buf [32]byte
	b := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // d[.ddd]e±XX
	var digits [20]byte
	k := 0
	j := 0
	for ; b[j] != 'e'; j++ {
		if b[j] != '.' {
			digits[k] = b[j]
			k++
		}
	}
	exp := 0
	neg := b[j+1] == '-'
	for _, c := range b[j+2:] {
		exp = exp*10 + int(c-'0')
	}
	if neg {
		exp = -exp
	}
	// The value is 0.d1d2...dk × 10^n.
	n := exp + 1
	d := digits[:k]
	switch {
	case k <= n && n <= 21:
		dst = append(dst, d...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, d[:n]...)
		dst = append(dst, '.')
		dst = append(dst, d[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, d...)
	default:
		dst = append(dst, d[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, d[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}
