package jcs

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// MaxExactInteger is the largest integer I-JSON exchanges exactly
// (RFC 7493 §2.2): 2^53−1.
const MaxExactInteger = 1<<53 - 1

// ExactNumber reports whether the JSON number literal lit keeps its value
// through canonicalization, as RFC 7493 §2.2 asks of I-JSON: an integer
// literal (no fraction, no exponent) within ±MaxExactInteger, or any other
// number whose value, read as a double and written back in the shortest form
// that reads back the same, is still exactly the value written. So 0.1, 1.0,
// 1e2 and 5e-324 are exact; 12345678901234567891, 9007199254740993.0,
// 0.10000000000000000001, 1e400 and 1e-400 are not. lit must be valid JSON
// number syntax; anything else is reported as not exact.
func ExactNumber(lit []byte) bool {
	if !numberSyntax(lit) {
		return false
	}
	body := bytes.TrimPrefix(lit, []byte("-"))
	if bytes.IndexAny(body, ".eE") < 0 {
		switch {
		case len(body) <= 15:
			return true
		case len(body) > 16:
			return false
		}
		n, err := strconv.ParseUint(string(body), 10, 64)
		return err == nil && n <= MaxExactInteger
	}
	if shortDecimal(body) {
		return true
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return false // beyond a finite double, or not a number
	}
	a, ok := decimalOf(string(lit))
	if !ok {
		return false
	}
	b, _ := decimalOf(strconv.FormatFloat(f, 'e', -1, 64))
	return a == b
}

// numberSyntax reports whether b is exactly one JSON number (RFC 8259 §6).
func numberSyntax(b []byte) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i, n = i+1, n+1
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}

// shortDecimal reports whether the unsigned number literal b has at most 15
// mantissa digits and an exponent of at most two digits. Such a value is a
// normal double's neighbourhood that a double tells apart from every other
// decimal of 15 digits (DBL_DIG is 15), so the shortest form that reads back
// is the same value: the common case, decided without parsing.
func shortDecimal(b []byte) bool {
	digits, i := 0, 0
	for ; i < len(b) && b[i] != 'e' && b[i] != 'E'; i++ {
		if b[i] != '.' {
			digits++
		}
	}
	if digits > 15 {
		return false
	}
	if i == len(b) {
		return true
	}
	exp := bytes.TrimLeft(b[i+1:], "+-")
	return len(exp) <= 2
}

// decimal is a number as ±digits × 10^exp, digits without leading or trailing
// zeros; zero is the zero value whatever its sign.
type decimal struct {
	neg    bool
	digits string
	exp    int
}

// decimalOf normalizes a number literal (JSON's syntax, or strconv's 'e'
// format). ok is false when the exponent is too long to be a double's.
func decimalOf(s string) (d decimal, ok bool) {
	if strings.HasPrefix(s, "-") {
		d.neg, s = true, s[1:]
	}
	mant, expPart, hasExp := strings.Cut(strings.ToLower(s), "e")
	whole, frac, _ := strings.Cut(mant, ".")
	digits := whole + frac
	d.exp = -len(frac)
	if hasExp {
		neg := strings.HasPrefix(expPart, "-")
		expPart = strings.TrimLeft(strings.TrimLeft(expPart, "+-"), "0")
		if strings.Trim(digits, "0") == "" {
			return decimal{}, true // zero, whatever its exponent
		}
		if len(expPart) > 9 {
			return decimal{}, false
		}
		e, _ := strconv.Atoi("0" + expPart)
		if neg {
			e = -e
		}
		d.exp += e
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return decimal{}, true
	}
	t := strings.TrimRight(digits, "0")
	d.exp += len(digits) - len(t)
	d.digits = t
	return d, true
}

// InexactNumber returns where the first number of the JSON text data that is
// not ExactNumber sits, as a path below the top-level value (".amount",
// ".items[2].price", `["odd key"]`; "" for the top-level value itself), and
// found false when every number is exact. data must be valid JSON; a text
// that is not reports no number. The path names keys but never quotes a
// value, so it is safe to put in an error message.
func InexactNumber(data []byte) (path string, found bool) {
	if !anyInexact(data) {
		return "", false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	p, found, _ := walkNumbers(dec, "")
	return p, found
}

// anyInexact scans data for number literals outside strings and checks
// each: the cheap pass that lets the common, exact document skip the
// decoder.
func anyInexact(data []byte) bool {
	inString, escaped := false, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '-' || ('0' <= c && c <= '9'):
			j := i
			for j < len(data) && strings.IndexByte("0123456789+-.eE", data[j]) >= 0 {
				j++
			}
			if !ExactNumber(data[i:j]) {
				return true
			}
			i = j - 1
		}
	}
	return false
}

// walkNumbers reads one value from dec and reports the path of its first
// inexact number.
func walkNumbers(dec *json.Decoder, path string) (string, bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", false, err
	}
	switch v := tok.(type) {
	case json.Number:
		return path, !ExactNumber([]byte(v)), nil
	case json.Delim:
		switch v {
		case '{':
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return "", false, err
				}
				key, _ := kt.(string)
				if p, found, err := walkNumbers(dec, path+pathKey(key)); found || err != nil {
					return p, found, err
				}
			}
		case '[':
			for i := 0; dec.More(); i++ {
				if p, found, err := walkNumbers(dec, path+"["+strconv.Itoa(i)+"]"); found || err != nil {
					return p, found, err
				}
			}
		}
		_, err := dec.Token() // the closing delimiter
		return "", false, err
	}
	return "", false, nil
}

// pathKey writes an object key as a path step: .key for a plain name,
// ["…"] (quoted in ASCII, so control and bidirectional characters show as
// escapes) for anything else. A very long key is cut short.
func pathKey(key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '_' || r == '-' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')) {
			plain = false
			break
		}
	}
	if len(key) > 64 {
		key, plain = key[:64]+"…", false
	}
	if plain {
		return "." + key
	}
	return "[" + strconv.QuoteToASCII(key) + "]"
}
