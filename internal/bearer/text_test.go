package bearer

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:           `plain`,
		`say "hi"`:        `say 'hi'`,
		`a\b`:             `a/b`,
		"tab\tnl\n\x00é😀": "tab?nl????",
	} {
		got := Text(in)
		if got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
		for _, r := range got {
			if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
				t.Errorf("Text(%q) kept %q", in, r)
			}
		}
	}
	long := strings.Repeat("x", 200)
	if got := Claim(long); len(got) != MaxClaim+3 || !strings.HasSuffix(got, "...") {
		t.Errorf("Claim of 200 bytes = %d bytes", len(got))
	}
}

func FuzzText(f *testing.F) {
	f.Add("token \"x\" \\ \x00 é")
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range Claim(s) {
			if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
				t.Fatalf("unsafe %q in %q", r, Claim(s))
			}
		}
	})
}
