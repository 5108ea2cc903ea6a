package jcs

import (
	"fmt"
	"slices"
)

// object parses the object at p.pos. Members are written in input order, then
// sortMembers puts them in canonical order.
func (p *parser) object() error {
	if err := p.enter(); err != nil {
		return err
	}
	p.pos++ // '{'
	p.out = append(p.out, '{')
	body := len(p.out)
	base, keyBase := len(p.members), len(p.keys)
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == '}' {
		p.pos++
		p.out = append(p.out, '}')
		p.depth--
		return nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.in) {
			return p.fail(p.pos, ErrSyntax, "unexpected end of input in object, expected a member name")
		}
		if p.in[p.pos] != '"' {
			return p.fail(p.pos, ErrSyntax, fmt.Sprintf("unexpected character %q in object, expected a member name", p.in[p.pos]))
		}
		m := member{keyStart: len(p.keys), start: len(p.out), offset: p.pos}
		if err := p.str(true); err != nil {
			return err
		}
		m.keyEnd = len(p.keys)
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != ':' {
			return p.fail(p.pos, ErrSyntax, "expected ':' after object member name")
		}
		p.pos++
		p.out = append(p.out, ':')
		if err := p.value(); err != nil {
			return err
		}
		m.end = len(p.out)
		p.members = append(p.members, m)
		p.skipSpace()
		if p.pos >= len(p.in) {
			return p.fail(p.pos, ErrSyntax, "unexpected end of input in object")
		}
		c := p.in[p.pos]
		p.pos++
		if c == ',' {
			p.out = append(p.out, ',')
			continue
		}
		if c == '}' {
			break
		}
		return p.fail(p.pos-1, ErrSyntax, fmt.Sprintf("unexpected character %q in object, expected ',' or '}'", c))
	}
	if err := p.sortMembers(base, body); err != nil {
		return err
	}
	p.members, p.keys = p.members[:base], p.keys[:keyBase]
	p.out = append(p.out, '}')
	p.depth--
	return nil
}

// sortMembers puts the members of the object whose body starts at out[body]
// (records members[base:]) in canonical order, and rejects duplicate names.
// Objects whose members already arrive in order, as encoding/json writes maps,
// cost one comparison per member; others are recorded for layout.
func (p *parser) sortMembers(base, body int) error {
	ms := p.members[base:]
	var moved bool
	var err error
	if len(ms) <= maxInsertionSort {
		moved, err = p.insertionSort(ms)
	} else {
		moved, err = p.bigSort(ms)
	}
	if err != nil || !moved {
		return err
	}
	first := len(p.spans)
	for _, m := range ms {
		p.spans = append(p.spans, span{m.start, m.end})
	}
	p.reorders = append(p.reorders, reorder{start: body, end: len(p.out), first: first, last: len(p.spans)})
	return nil
}

// maxInsertionSort is the member count up to which insertion sort is used;
// typical objects are small, and for them it beats a general sort.
const maxInsertionSort = 24

// insertionSort sorts ms by name, reporting whether any member moved. The
// sorted prefix never holds two equal names, so a duplicate of the member
// being inserted is always the neighbour it stops at.
func (p *parser) insertionSort(ms []member) (moved bool, err error) {
	for i := 1; i < len(ms); i++ {
		m := ms[i]
		name := p.keys[m.keyStart:m.keyEnd]
		j := i
		c := 0
		for j > 0 {
			prev := &ms[j-1]
			if c = compareUTF16(name, p.keys[prev.keyStart:prev.keyEnd]); c >= 0 {
				break
			}
			ms[j] = *prev
			j--
		}
		if c == 0 && j > 0 {
			return false, p.duplicate(m, ms[j-1])
		}
		if j != i {
			ms[j] = m
			moved = true
		}
	}
	return moved, nil
}

// bigSort sorts a large object's members with a general sort.
func (p *parser) bigSort(ms []member) (moved bool, err error) {
	if slices.IsSortedFunc(ms, p.compare) {
		moved = false
	} else {
		slices.SortFunc(ms, p.compare)
		moved = true
	}
	for i := 1; i < len(ms); i++ {
		if p.compare(ms[i-1], ms[i]) == 0 {
			return false, p.duplicate(ms[i-1], ms[i])
		}
	}
	return moved, nil
}

// duplicate reports two members with the same name, at the later one.
func (p *parser) duplicate(a, b member) error {
	return p.fail(max(a.offset, b.offset), ErrDuplicateKey, "duplicate object member name")
}

func (p *parser) compare(a, b member) int {
	return compareUTF16(p.keys[a.keyStart:a.keyEnd], p.keys[b.keyStart:b.keyEnd])
}

// compareUTF16 orders two valid UTF-8 strings by their UTF-16 code units, the
// order RFC 8785 prescribes for member names.
//
// UTF-8 byte order is code point order, and code point order agrees with
// UTF-16 order except between supplementary characters (U+10000 and up,
// encoded as surrogates 0xD800-0xDBFF first) and U+E000-U+FFFF: in UTF-16 the
// supplementary ones sort first. The strings share every byte before the first
// difference, so that byte starts a character in both or in neither; only
// when it starts one does the lead byte need remapping.
func compareUTF16(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return len(a) - len(b)
	}
	return int(utf16Rank(a[i])) - int(utf16Rank(b[i]))
}

// utf16Rank maps a byte so that lead bytes of supplementary characters
// (0xF0-0xF4) rank between 0xED (U+D000-U+D7FF) and 0xEE-0xEF
// (U+E000-U+FFFF), leaving all other bytes in their order.
func utf16Rank(c byte) uint16 {
	switch {
	case c >= 0xF0:
		return uint16(c) - 0xF0 + 0xEE // 0xEE..0xFD
	case c >= 0xEE:
		return uint16(c) - 0xEE + 0x100 // above every other rank
	}
	return uint16(c)
}
