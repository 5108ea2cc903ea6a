// Package printable decides which characters writ accepts in what people
// read, and shows the others visibly. Control characters (C0, DEL, C1) and
// Unicode format characters (bidirectional embeddings, overrides and
// isolates, zero-width characters, tag characters) are invisible or
// reorder the text around them, so an identifier holding one can look like
// another (CVE-2021-42574, "Trojan Source") and free text can hide what an
// approver is asked to approve.
package printable

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Identifier returns the first character of s that has no place in an
// identifier or a scope string (an agent ID, a tool name, a resource
// pattern): any control or format character, and the line and paragraph
// separators. ok is true when there is none.
func Identifier(s string) (r rune, at int, ok bool) {
	for i, c := range s {
		if hidden(c) {
			return c, i, false
		}
	}
	return 0, 0, true
}

// Text is Identifier for free text (an intent, a reason): tab, line feed
// and carriage return are allowed, and so are the joiners and marks that
// scripts need to be written correctly (U+200C ZWNJ, U+200D ZWJ, U+200E
// LRM, U+200F RLM, U+061C ALM), which affect only the characters next to
// them. Embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069),
// which reorder whole runs of text, are refused.
func Text(s string) (r rune, at int, ok bool) {
	for i, c := range s {
		switch c {
		case '\t', '\n', '\r', '\u200c', '\u200d', '\u200e', '\u200f', '\u061c':
			continue
		}
		if hidden(c) {
			return c, i, false
		}
	}
	return 0, 0, true
}

// Name describes r for an error message: "U+202E" and, for the commonest,
// what it is.
func Name(r rune) string {
	n := fmt.Sprintf("U+%04X", r)
	switch {
	case r == 0:
		return n + " (NUL)"
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		return n + " (a control character)"
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return n + " (a bidirectional override)"
	}
	return n + " (an invisible format character)"
}

// hidden reports whether r is a control or format character, or a line or
// paragraph separator.
func hidden(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 ||
		r == utf8.RuneError || unicode.Is(unicode.Cf, r)
}

// Show returns b with every character Identifier refuses, other than tab,
// line feed, carriage return and the joiners U+200C and U+200D, replaced
// by a visible marker such as ⟨U+202E⟩, so it can neither hide nor reorder
// text where it is displayed. Invalid UTF-8 shows as ⟨U+FFFD⟩. b is
// returned as is when it holds none (the common case, checked without
// allocating).
func Show(b []byte) []byte {
	i := firstShown(b)
	if i < 0 {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	out = append(out, b[:i]...)
	for i < len(b) {
		r, n := utf8.DecodeRune(b[i:])
		if shown(r) {
			out = fmt.Appendf(out, "⟨U+%04X⟩", r)
		} else {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	return out
}

// ShowString is Show for a string.
func ShowString(s string) string {
	if firstShown([]byte(s)) < 0 {
		return s
	}
	return string(Show([]byte(s)))
}

func shown(r rune) bool {
	switch r {
	case '\t', '\n', '\r', '\u200c', '\u200d':
		return false
	}
	return hidden(r)
}

// firstShown returns the index of the first character Show replaces, or -1.
func firstShown(b []byte) int {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if shown(r) {
			return i
		}
		i += n
	}
	return -1
}
