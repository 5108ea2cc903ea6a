package ledger

import (
	"encoding/json"
	"errors"
	"strconv"
)

// errLeafSyntax is what decodeLeaf reports for anything it cannot read.
var errLeafSyntax = errors.New("not a writ event envelope")

// decodeLeaf reads a leaf's envelope without reflection. It is lenient only
// in ways that cannot matter: ParseLeaf re-encodes what it read and requires
// the very same bytes, so a leaf is accepted only if it is exactly the
// canonical encoding of the envelope decoded here.
func decodeLeaf(b []byte) (leafDoc, error) {
	var d leafDoc
	p := leafScanner{b: b}
	if !p.byte('{') {
		return d, errLeafSyntax
	}
	for first := true; ; first = false {
		if p.byte('}') {
			break
		}
		if !first && !p.byte(',') {
			return d, errLeafSyntax
		}
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return d, errLeafSyntax
		}
		var dst *string
		switch key {
		case "v":
			n, ok := p.int()
			if !ok {
				return d, errLeafSyntax
			}
			d.V = n
			continue
		case "prev", "delegation":
			n, ok := p.uint()
			if !ok {
				return d, errLeafSyntax
			}
			if key == "prev" {
				d.Prev = &n
			} else {
				d.Delegation = &n
			}
			continue
		case "data":
			raw, ok := p.skip()
			if !ok {
				return d, errLeafSyntax
			}
			d.Data = json.RawMessage(raw)
			continue
		case "commitments":
			if !p.byte('{') {
				return d, errLeafSyntax
			}
			d.Commitments = map[string]string{}
			for cfirst := true; !p.byte('}'); cfirst = false {
				if !cfirst && !p.byte(',') {
					return d, errLeafSyntax
				}
				k, ok1 := p.str()
				ok2 := p.byte(':')
				v, ok3 := p.str()
				if !ok1 || !ok2 || !ok3 {
					return d, errLeafSyntax
				}
				d.Commitments[k] = v
			}
			continue
		case "type":
			dst = &d.Type
		case "time":
			dst = &d.Time
		case "task_id":
			dst = &d.TaskID
		case "principal":
			dst = &d.Principal
		case "agent":
			dst = &d.Agent
		case "decision_id":
			dst = &d.DecisionID
		case "policy_version":
			dst = &d.PolicyVersion
		case "jti":
			dst = &d.JTI
		case "trace_id":
			dst = &d.TraceID
		default:
			return d, errLeafSyntax
		}
		if *dst, ok = p.str(); !ok {
			return d, errLeafSyntax
		}
	}
	if p.i != len(b) {
		return d, errLeafSyntax
	}
	return d, nil
}

type leafScanner struct {
	b []byte
	i int
}

func (p *leafScanner) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *leafScanner) int() (int, bool) {
	n, err := strconv.Atoi(string(p.digits(9)))
	return n, err == nil
}

// uint reads a non-negative integer of at most 16 digits (MaxLink has 16);
// a leading zero is caught when the leaf is re-encoded.
func (p *leafScanner) uint() (uint64, bool) {
	n, err := strconv.ParseUint(string(p.digits(16)), 10, 64)
	return n, err == nil
}

// digits passes over up to max decimal digits and returns them (none is
// for the caller's parse to refuse).
func (p *leafScanner) digits(max int) []byte {
	j := p.i
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' && j-p.i < max {
		j++
	}
	d := p.b[p.i:j]
	p.i = j
	return d
}

// plainStr reads a JSON string without escapes and returns its bytes, or
// false (consuming nothing) for one with an escape.
func (p *leafScanner) plainStr() ([]byte, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	for j := p.i + 1; j < len(p.b); j++ {
		switch p.b[j] {
		case '\\':
			return nil, false
		case '"':
			s := p.b[p.i+1 : j]
			p.i = j + 1
			return s, true
		}
	}
	return nil, false
}

// str reads a JSON string, unescaping the escapes canonical JSON uses.
func (p *leafScanner) str() (string, bool) {
	if !p.byte('"') {
		return "", false
	}
	start := p.i
	for p.i < len(p.b) && p.b[p.i] != '"' && p.b[p.i] != '\\' {
		p.i++
	}
	if p.i < len(p.b) && p.b[p.i] == '"' {
		s := string(p.b[start:p.i])
		p.i++
		return s, true // UTF-8 is checked when the leaf is re-encoded
	}
	out := append([]byte(nil), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), true
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			return "", false
		}
		e := p.b[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if p.i+4 > len(p.b) {
				return "", false
			}
			r, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 16)
			if err != nil || r >= 0x20 {
				return "", false // canonical JSON escapes only controls this way
			}
			out = append(out, byte(r))
			p.i += 4
		default:
			return "", false
		}
	}
	return "", false
}

// skip passes over one JSON value and returns its bytes. Strings are skipped
// with their escapes; the value's validity is checked when the leaf is
// re-encoded.
func (p *leafScanner) skip() ([]byte, bool) {
	start := p.i
	depth := 0
	for p.i < len(p.b) {
		switch c := p.b[p.i]; c {
		case '"':
			p.i++
			for p.i < len(p.b) && p.b[p.i] != '"' {
				if p.b[p.i] == '\\' {
					p.i++
				}
				p.i++
			}
			if p.i >= len(p.b) {
				return nil, false
			}
			p.i++
		case '{', '[':
			depth++
			p.i++
		case '}', ']':
			if depth == 0 {
				return p.b[start:p.i], p.i > start
			}
			depth--
			p.i++
		case ',':
			if depth == 0 {
				return p.b[start:p.i], p.i > start
			}
			p.i++
		default:
			p.i++
		}
		if depth == 0 && p.i > start && (p.b[start] == '{' || p.b[start] == '[' || p.b[start] == '"') {
			return p.b[start:p.i], true
		}
	}
	return p.b[start:p.i], depth == 0 && p.i > start
}
