package printable_test

import (
	"testing"
	"unicode/utf8"

	"github.com/writhq/writ/internal/printable"
)

func TestIdentifierAndText(t *testing.T) {
	for _, tc := range []struct {
		s          string
		ident, txt bool
		bad        rune
	}{
		{"spiffe://example.org/agent/a", true, true, 0},
		{"invoices.read", true, true, 0},
		{"Résumé 履歴書 سيرة", true, true, 0},
		{"a\x00b", false, false, 0},
		{"a\tb", false, true, '\t'},
		{"line one\nline two\r\n", false, true, '\n'},
		{"a\x1bb", false, false, 0x1b},
		{"a\x7fb", false, false, 0x7f},
		{"a\u0085b", false, false, 0x85},
		{"invoices\u202e.read", false, false, 0x202e},
		{"kb://a/\u2066x\u2069", false, false, 0x2066},
		{"a\u200bb", false, false, 0x200b},
		{"a\ufeffb", false, false, 0xfeff},
		{"a\U000e0041b", false, false, 0xe0041},
		{"a\u2028b", false, false, 0x2028},
		{"می\u200cخواهم", false, true, 0x200c},
		{"שלום\u200f!", false, true, 0x200f},
	} {
		r, _, ok := printable.Identifier(tc.s)
		if ok != tc.ident {
			t.Errorf("Identifier(%q) ok = %v", tc.s, ok)
		}
		if !ok && tc.bad != 0 && r != tc.bad {
			t.Errorf("Identifier(%q) names %U, want %U", tc.s, r, tc.bad)
		}
		if _, _, ok := printable.Text(tc.s); ok != tc.txt {
			t.Errorf("Text(%q) ok = %v", tc.s, ok)
		}
	}
}

func TestShow(t *testing.T) {
	for in, want := range map[string]string{
		"plain <b>html</b>\n\ttabbed": "plain <b>html</b>\n\ttabbed",
		"Pay \u202etxt.exe":           "Pay ⟨U+202E⟩txt.exe",
		"\u2067abc\u2069":             "⟨U+2067⟩abc⟨U+2069⟩",
		"nul\x00 esc\x1b del\x7f":     "nul⟨U+0000⟩ esc⟨U+001B⟩ del⟨U+007F⟩",
		"zero\u200bwidth \u200dkept":  "zero⟨U+200B⟩width \u200dkept",
		"bad \xff byte":               "bad ⟨U+FFFD⟩ byte",
		"日本語":                         "日本語",
	} {
		if got := printable.ShowString(in); got != want {
			t.Errorf("ShowString(%q) = %q, want %q", in, got, want)
		}
	}
	b := []byte("nothing to mark")
	if got := printable.Show(b); &got[0] != &b[0] {
		t.Error("Show copied a slice it had nothing to change in")
	}
}

// FuzzShow: what Show returns is valid UTF-8 free text (nothing hidden is
// left), and a body with nothing to mark comes back unchanged.
func FuzzShow(f *testing.F) {
	for _, s := range []string{"", "abc", "a\u202eb", "\x00\x7f\u0085", "\xff\xfe", "\u2066\u2069", "ok\n\tok", "\U000e0001"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out := printable.Show(b)
		if !utf8.Valid(out) {
			t.Fatalf("Show(%q) = %q is not valid UTF-8", b, out)
		}
		if r, _, ok := printable.Text(string(out)); !ok {
			t.Fatalf("Show(%q) = %q still holds %U", b, out, r)
		}
		if _, _, ok := printable.Text(string(b)); ok && utf8.Valid(b) && !hasMark(b) && string(out) != string(b) {
			t.Fatalf("Show changed text with nothing to mark: %q -> %q", b, out)
		}
	})
}

// hasMark reports whether b holds a character Text allows but Show marks.
func hasMark(b []byte) bool {
	for _, r := range string(b) {
		if r == '\u200e' || r == '\u200f' || r == '\u061c' {
			return true
		}
	}
	return false
}
