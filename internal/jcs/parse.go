package jcs

import "fmt"

// parser reads one JSON text and writes its canonical tokens to out in
// input order. Objects whose members arrive out of canonical order are
// recorded in reorders; layout then copies out to the caller's buffer once,
// emitting those objects' members in canonical order. Deferring the reordering
// to that single pass keeps the work linear in the input size: reordering in
// place at every closing brace would move a deep document's inner bytes once
// per enclosing object.
type parser struct {
	in    []byte
	pos   int
	out   []byte
	depth int

	// keys holds the decoded names of the members of every open object,
	// as a stack: an object truncates it back when it closes.
	keys []byte
	// members holds the open objects' member records, as a stack too.
	members []member
	// reorders lists the objects whose members must be laid out in another
	// order than out holds them; spans holds those members, sorted.
	reorders []reorder
	spans    []span
}

// member locates one object member: its decoded name in parser.keys and its
// canonical `"name":value` bytes in parser.out.
type member struct {
	keyStart, keyEnd int
	start, end       int
	offset           int // input offset of the name, for error messages
}

// span is a range of parser.out.
type span struct{ start, end int }

// reorder is an object whose body out[start:end] must be laid out as the
// members spans[first:last], in that order, separated by commas.
type reorder struct {
	start, end  int
	first, last int
}

// document parses the whole input: one value and nothing after it but
// whitespace.
func (p *parser) document() error {
	if err := p.value(); err != nil {
		return err
	}
	p.skipSpace()
	if p.pos < len(p.in) {
		return p.fail(p.pos, ErrSyntax, "unexpected data after top-level value")
	}
	return nil
}

func (p *parser) value() error {
	p.skipSpace()
	if p.pos >= len(p.in) {
		return p.fail(p.pos, ErrSyntax, "unexpected end of input, expected a value")
	}
	switch c := p.in[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		return p.str(false)
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || isDigit(c):
		return p.number()
	default:
		return p.fail(p.pos, ErrSyntax, fmt.Sprintf("unexpected character %q, expected a value", c))
	}
}

func (p *parser) literal(word string) error {
	if len(p.in)-p.pos < len(word) || string(p.in[p.pos:p.pos+len(word)]) != word {
		return p.fail(p.pos, ErrSyntax, "invalid literal, expected "+word)
	}
	p.pos += len(word)
	p.out = append(p.out, word...)
	return nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > MaxDepth {
		return p.fail(p.pos, ErrTooDeep, fmt.Sprintf("nesting deeper than %d", MaxDepth))
	}
	return nil
}

func (p *parser) array() error {
	if err := p.enter(); err != nil {
		return err
	}
	p.pos++ // '['
	p.out = append(p.out, '[')
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == ']' {
		p.pos++
		p.out = append(p.out, ']')
		p.depth--
		return nil
	}
	for {
		if err := p.value(); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.in) {
			return p.fail(p.pos, ErrSyntax, "unexpected end of input in array")
		}
		switch p.in[p.pos] {
		case ',':
			p.pos++
			p.out = append(p.out, ',')
		case ']':
			p.pos++
			p.out = append(p.out, ']')
			p.depth--
			return nil
		default:
			return p.fail(p.pos, ErrSyntax, fmt.Sprintf("unexpected character %q in array, expected ',' or ']'", p.in[p.pos]))
		}
	}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) fail(offset int, kind error, detail string) error {
	return &Error{Offset: offset, Err: kind, detail: detail}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
