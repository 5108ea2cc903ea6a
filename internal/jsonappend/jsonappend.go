// Package jsonappend appends JSON byte for byte as encoding/json writes it
// (strings escaped for HTML, map keys sorted, floats in its format),
// without reflection, for the records writ encodes on every call. Each
// encoder built on it has a test that holds it to encoding/json.
package jsonappend

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Object writes the members of one JSON object, in the order they are
// given.
type Object struct {
	B    []byte
	open bool
}

// Key writes the separator and "k": and returns the buffer to append the
// value to; k needs no escaping.
func (w *Object) Key(k string) []byte {
	if w.open {
		w.B = append(w.B, ',')
	} else {
		w.B = append(w.B, '{')
		w.open = true
	}
	w.B = append(w.B, '"')
	w.B = append(w.B, k...)
	return append(w.B, '"', ':')
}

// End closes the object and returns the buffer.
func (w *Object) End() []byte {
	if !w.open {
		return append(w.B, '{', '}')
	}
	return append(w.B, '}')
}

func (w *Object) Str(k, v string)       { w.B = String(w.Key(k), v) }
func (w *Object) Int(k string, v int)   { w.B = strconv.AppendInt(w.Key(k), int64(v), 10) }
func (w *Object) I64(k string, v int64) { w.B = strconv.AppendInt(w.Key(k), v, 10) }
func (w *Object) Bool(k string, v bool) { w.B = strconv.AppendBool(w.Key(k), v) }

// Strings writes a []string member: null when nil.
func (w *Object) Strings(k string, v []string) { w.B = Strings(w.Key(k), v) }

// OptStr writes a string member tagged omitempty.
func (w *Object) OptStr(k, v string) {
	if v != "" {
		w.Str(k, v)
	}
}

// OptStrings writes a []string member tagged omitempty.
func (w *Object) OptStrings(k string, v []string) {
	if len(v) > 0 {
		w.Strings(k, v)
	}
}

// OptMap writes a map member tagged omitempty.
func (w *Object) OptMap(k string, m map[string]any) {
	if len(m) > 0 {
		w.B = Map(w.Key(k), m)
	}
}

// Map writes m as encoding/json does: keys sorted, null when nil. A value
// of a type left to encoding/json that it cannot encode is written as
// null.
func Map(b []byte, m map[string]any) []byte {
	b, _ = appendMap(b, m)
	return b
}

// MapErr is Map, failing where encoding/json would fail.
func MapErr(b []byte, m map[string]any) ([]byte, error) { return appendMap(b, m) }

func appendMap(b []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	var arr [16]string
	keys := arr[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = String(b, k)
		b = append(b, ':')
		var err error
		if b, err = value(b, m[k]); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// Array writes an array of n elements, elem appending the i-th.
func Array(b []byte, n int, elem func(b []byte, i int) []byte) []byte {
	b = append(b, '[')
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = elem(b, i)
	}
	return append(b, ']')
}

// Strings writes ss: null when nil.
func Strings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = String(b, s)
	}
	return append(b, ']')
}

// value writes the values a decoded JSON document or a record's map holds
// directly, and leaves any other to encoding/json.
func value(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return String(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	case float64:
		if !math.IsInf(v, 0) && !math.IsNaN(v) {
			return appendFloat(b, v), nil
		}
	case []string:
		return Strings(b, v), nil
	case map[string]any:
		return appendMap(b, v)
	case []any:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = value(b, e); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		// A record is never left unterminated.
		return append(b, "null"...), err
	}
	return append(b, j...), nil
}

// appendFloat writes a finite float64 as encoding/json does: the shortest
// decimal that reads back the same, in exponent form below 1e-6 and from
// 1e21 on, with a one-digit negative exponent unpadded.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 is written e-9.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// Time writes t as its MarshalJSON does: RFC 3339 with nanoseconds,
// quoted. Like it, it fails for a year outside 0 to 9999.
func Time(b []byte, t time.Time) ([]byte, error) {
	out, err := t.AppendText(append(b, '"'))
	if err != nil {
		return b, err
	}
	return append(out, '"'), nil
}

const hex = "0123456789abcdef"

// String writes s quoted as encoding/json does by default: <, > and &
// escaped for HTML, U+2028 and U+2029 escaped, invalid UTF-8 replaced
// with U+FFFD.
func String(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
