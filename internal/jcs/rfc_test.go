package jcs

import (
	"math"
	"strconv"
	"testing"
)

// TestRFCSample is the combined sample of RFC 8785 section 3.2.2: number
// serialization, string escaping, literals, whitespace and member order.
func TestRFCSample(t *testing.T) {
	in := `{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`
	want := `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`
	checkCanonical(t, in, want)
}

// TestRFCSorting is the sorting example of RFC 8785 section 3.2.3, whose
// names are ordered by UTF-16 code units: the emoji (surrogates 0xD83D
// 0xDE00) sorts before U+FB33 although its code point is larger.
func TestRFCSorting(t *testing.T) {
	in := `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`
	want := "{" +
		`"\r":"Carriage Return",` +
		`"1":"One",` +
		"\"\u0080\":\"Control\"," +
		"\"\u00f6\":\"Latin Small Letter O With Diaeresis\"," +
		"\"\u20ac\":\"Euro Sign\"," +
		"\"\U0001F600\":\"Emoji: Grinning Face\"," +
		"\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"" +
		"}"
	checkCanonical(t, in, want)
}

// appendixB is the table of RFC 8785 Appendix B: IEEE-754 bit patterns and
// their canonical serialization. An empty want marks a value that has no
// canonical form (NaN and Infinity).
var appendixB = []struct {
	bits uint64
	want string
}{
	{0x0000000000000000, "0"},
	{0x8000000000000000, "0"},
	{0x0000000000000001, "5e-324"},
	{0x8000000000000001, "-5e-324"},
	{0x7fefffffffffffff, "1.7976931348623157e+308"},
	{0xffefffffffffffff, "-1.7976931348623157e+308"},
	{0x4340000000000000, "9007199254740992"},
	{0xc340000000000000, "-9007199254740992"},
	{0x4430000000000000, "295147905179352830000"},
	{0x7fffffffffffffff, ""}, // NaN
	{0x7ff0000000000000, ""}, // Infinity
	{0x44b52d02c7e14af5, "9.999999999999997e+22"},
	{0x44b52d02c7e14af6, "1e+23"},
	{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
	{0x444b1ae4d6e2ef4e, "999999999999999700000"},
	{0x444b1ae4d6e2ef4f, "999999999999999900000"},
	{0x444b1ae4d6e2ef50, "1e+21"},
	{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
	{0x3eb0c6f7a0b5ed8d, "0.000001"},
	{0x41b3de4355555553, "333333333.3333332"},
	{0x41b3de4355555554, "333333333.33333325"},
	{0x41b3de4355555555, "333333333.3333333"},
	{0x41b3de4355555556, "333333333.3333334"},
	{0x41b3de4355555557, "333333333.33333343"},
	{0xbecbf647612f3696, "-0.0000033333333333333333"},
	{0x43143ff3c1cb0959, "1424953923781206.2"},
}

func TestAppendixB(t *testing.T) {
	for _, tc := range appendixB {
		f := math.Float64frombits(tc.bits)
		name := strconv.FormatUint(tc.bits, 16)
		t.Run(name, func(t *testing.T) {
			if tc.want == "" {
				if !math.IsNaN(f) && !math.IsInf(f, 0) {
					t.Fatalf("row %s has no expected text but %v is finite", name, f)
				}
				if _, err := Marshal(f); err == nil {
					t.Errorf("Marshal(%v) succeeded, want an error", f)
				}
				return
			}
			if got := string(appendNumber(nil, f)); got != tc.want {
				t.Errorf("appendNumber(%#x) = %s, want %s", tc.bits, got, tc.want)
			}
			// The same double spelled three ways in JSON text must come out
			// the same: shortest, 17 significant digits, and plain decimal.
			for _, spelled := range []string{
				strconv.FormatFloat(f, 'g', -1, 64),
				strconv.FormatFloat(f, 'e', 16, 64),
				strconv.FormatFloat(f, 'f', -1, 64),
			} {
				got, err := Canonicalize([]byte(spelled))
				if err != nil {
					t.Errorf("Canonicalize(%s): %v", spelled, err)
					continue
				}
				if string(got) != tc.want {
					t.Errorf("Canonicalize(%s) = %s, want %s", spelled, got, tc.want)
				}
			}
		})
	}
}

func checkCanonical(t *testing.T, in, want string) {
	t.Helper()
	got, err := Canonicalize([]byte(in))
	if err != nil {
		t.Fatalf("Canonicalize: %v", err)
	}
	if string(got) != want {
		t.Errorf("Canonicalize:\n got %s\nwant %s", got, want)
	}
	again, err := Canonicalize(got)
	if err != nil {
		t.Fatalf("Canonicalize(canonical): %v", err)
	}
	if string(again) != string(got) {
		t.Errorf("not idempotent:\nfirst  %s\nsecond %s", got, again)
	}
}
