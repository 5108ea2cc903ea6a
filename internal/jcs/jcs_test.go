package jcs

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var canonicalCases = []struct {
	name, in, want string
}{
	{"whitespace", " { \"b\" : [ 1 , 2 ] ,\n\t\"a\" : { } }\r\n", `{"a":{},"b":[1,2]}`},
	{"empty containers", `[ [ ] , { } ]`, `[[],{}]`},
	{"top-level string", `  "x"  `, `"x"`},
	{"top-level number", "\n42\n", `42`},
	{"literals", `[true,false,null]`, `[true,false,null]`},
	{"nested sort", `{"b":{"d":1,"c":2},"a":[{"z":0,"y":1}]}`, `{"a":[{"y":1,"z":0}],"b":{"c":2,"d":1}}`},
	{"reorders at every level", `{"b":{"d":{"f":1,"e":2},"c":[{"h":1,"g":2},{"j":1,"i":2}]},"a":{"y":1,"x":2}}`,
		`{"a":{"x":2,"y":1},"b":{"c":[{"g":2,"h":1},{"i":2,"j":1}],"d":{"e":2,"f":1}}}`},
	{"reordered object first in reordered object", `{"z":{"z":{"b":1,"a":2},"a":0},"a":0}`, `{"a":0,"z":{"a":0,"z":{"a":2,"b":1}}}`},
	{"sorted object inside reordered one", `{"b":{"a":1,"b":2},"a":[]}`, `{"a":[],"b":{"a":1,"b":2}}`},
	{"many members", manyMembers(100, true), manyMembers(100, false)},
	{"prefix names", `{"ab":1,"a":2,"":3}`, `{"":3,"a":2,"ab":1}`},
	{"names sorted decoded", `{"\n":1,"a":2,"\u0000":3}`, `{"\u0000":3,"\n":1,"a":2}`},
	{"escaped name order", `{"\u0062":1,"a":2}`, `{"a":2,"b":1}`},
	{"already sorted", `{"a":1,"b":2,"c":3}`, `{"a":1,"b":2,"c":3}`},
	{"short escapes kept", `"\b\f\n\r\t\"\\"`, `"\b\f\n\r\t\"\\"`},
	{"unicode escapes to short form", `"\u0008\u000C\u000A\u000D\u0009\u0022\u005C"`, `"\b\f\n\r\t\"\\"`},
	{"other controls as lowercase hex", `"\u0000\u001F\u000b"`, `"\u0000\u001f\u000b"`},
	{"no escape above controls", `"\u0041\/\u00e9\u007f\u2028\u2029"`, "\"A/\u00e9\u007f\u2028\u2029\""},
	{"surrogate pair", `"\uD83D\uDE00"`, "\"\U0001F600\""},
	{"literal UTF-8 kept", "\"caf\u00e9 \u20ac \U0001F600\"", "\"caf\u00e9 \u20ac \U0001F600\""},
	{"html characters literal", `"\u003c\u003e\u0026"`, `"<>&"`},
	{"integers", `[0,-0,7,-7,100,123456789012345]`, `[0,0,7,-7,100,123456789012345]`},
	{"fractions", `[1.0,4.50,-0.0,0.1,2e-3,1.5e300]`, `[1,4.5,0,0.1,0.002,1.5e+300]`},
	{"exponent boundaries", `[1e21,1e20,1E-7,0.000001,1e-6,123e-9]`, `[1e+21,100000000000000000000,1e-7,0.000001,0.000001,1.23e-7]`},
	{"beyond 2^53 rounds", `[9007199254740993,123456789012345678]`, `[9007199254740992,123456789012345680]`},
	{"underflow rounds to zero", `[1e-400,-1e-400]`, `[0,0]`},
	{"subnormal", `4.9e-324`, `5e-324`},
	{"long mantissa", `0.` + strings.Repeat("3", 400), `0.3333333333333333`},
	{"large exponent digits", `1e0000000000000000000000000001`, `10`},
}

func TestCanonicalize(t *testing.T) {
	for _, tc := range canonicalCases {
		t.Run(tc.name, func(t *testing.T) {
			checkCanonical(t, tc.in, tc.want)
		})
	}
}

var errorCases = []struct {
	name   string
	in     string
	kind   error
	offset int
}{
	{"empty", ``, ErrSyntax, 0},
	{"only whitespace", "  \n", ErrSyntax, 3},
	{"trailing data", `{} {}`, ErrSyntax, 3},
	{"trailing garbage", `1 x`, ErrSyntax, 2},
	{"unclosed object", `{"a":1`, ErrSyntax, 6},
	{"unclosed array", `[1,2`, ErrSyntax, 4},
	{"trailing comma array", `[1,]`, ErrSyntax, 3},
	{"trailing comma object", `{"a":1,}`, ErrSyntax, 7},
	{"missing colon", `{"a" 1}`, ErrSyntax, 5},
	{"non-string name", `{1:2}`, ErrSyntax, 1},
	{"missing comma", `[1 2]`, ErrSyntax, 3},
	{"leading zero", `01`, ErrSyntax, 1},
	{"leading zero in array", `[01]`, ErrSyntax, 2},
	{"bare minus", `-`, ErrSyntax, 0},
	{"plus sign", `+1`, ErrSyntax, 0},
	{"leading dot", `.5`, ErrSyntax, 0},
	{"trailing dot", `1.`, ErrSyntax, 0},
	{"empty exponent", `1e`, ErrSyntax, 0},
	{"signed empty exponent", `1e+`, ErrSyntax, 0},
	{"NaN", `NaN`, ErrSyntax, 0},
	{"Infinity", `-Infinity`, ErrSyntax, 0},
	{"hex number", `0x10`, ErrSyntax, 1},
	{"truncated literal", `tru`, ErrSyntax, 0},
	{"capitalised literal", `True`, ErrSyntax, 0},
	{"single quotes", `'a'`, ErrSyntax, 0},
	{"comment", `/*x*/1`, ErrSyntax, 0},
	{"byte order mark", "\uFEFF{}", ErrSyntax, 0},
	{"unterminated string", `"abc`, ErrSyntax, 0},
	{"unterminated escape", `"\`, ErrSyntax, 1},
	{"bad escape", `"\x41"`, ErrSyntax, 1},
	{"short unicode escape", `"\u12"`, ErrSyntax, 1},
	{"bad hex digit", `"\u12G4"`, ErrSyntax, 1},
	{"raw tab in string", "\"a\tb\"", ErrSyntax, 2},
	{"raw NUL in string", "\"\x00\"", ErrSyntax, 1},
	{"bad low half escape", `"\ud800\u12"`, ErrSyntax, 7},
	{"invalid byte outside string", "\xff", ErrSyntax, 0},

	{"invalid UTF-8 byte", "\"a\xffb\"", ErrInvalidUnicode, 2},
	{"overlong encoding", "\"\xc0\xaf\"", ErrInvalidUnicode, 1},
	{"encoded surrogate", "\"\xed\xa0\x80\"", ErrInvalidUnicode, 1},
	{"truncated sequence", "\"\xe2\x82\"", ErrInvalidUnicode, 1},
	{"invalid UTF-8 in name", "{\"\xfe\":1}", ErrInvalidUnicode, 2},
	{"lone high surrogate", `"\ud800"`, ErrInvalidUnicode, 1},
	{"lone low surrogate", `"x\udc00"`, ErrInvalidUnicode, 2},
	{"high then BMP escape", `"\ud800\u0041"`, ErrInvalidUnicode, 1},
	{"high then text", `"\ud800x"`, ErrInvalidUnicode, 1},
	{"high then other escape", `"\ud800\n"`, ErrInvalidUnicode, 1},
	{"two high surrogates", `"\ud800\ud800"`, ErrInvalidUnicode, 1},

	{"duplicate name", `{"a":1,"a":2}`, ErrDuplicateKey, 7},
	{"duplicate after unescaping", `{"a":1,"\u0061":2}`, ErrDuplicateKey, 7},
	{"duplicate out of order", `{"b":1,"a":2,"b":3}`, ErrDuplicateKey, 13},
	{"duplicate nested", `[{"x":{"k":1,"k":1}}]`, ErrDuplicateKey, 13},
	{"duplicate in large object", manyMembers(50, true)[:len(manyMembers(50, true))-1] + `,"m007":0}`, ErrDuplicateKey, len(manyMembers(50, true))},

	{"overflow", `1e309`, ErrNumberRange, 0},
	{"negative overflow", `[-1.8e308]`, ErrNumberRange, 1},
	{"long integer overflow", "1" + strings.Repeat("0", 400), ErrNumberRange, 0},

	{"arrays too deep", strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), ErrTooDeep, MaxDepth},
	{"objects too deep", strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1), ErrTooDeep, 5 * MaxDepth},
}

func TestCanonicalizeErrors(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Canonicalize([]byte(tc.in))
			if err == nil {
				t.Fatalf("Canonicalize(%q) = %s, want error", tc.in, out)
			}
			if out != nil {
				t.Errorf("Canonicalize returned output %q with its error", out)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %q is not %v", err, tc.kind)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error", err)
			}
			if e.Offset != tc.offset {
				t.Errorf("offset = %d, want %d (%v)", e.Offset, tc.offset, err)
			}
			if !strings.HasPrefix(err.Error(), "jcs: ") {
				t.Errorf("message %q lacks the package prefix", err)
			}
		})
	}
}

func TestMaxDepthAccepted(t *testing.T) {
	in := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	checkCanonical(t, in, in)
}

func TestErrorDoesNotQuoteValues(t *testing.T) {
	const secret = "hunter2-secret-token"
	for _, in := range []string{
		`{"token":"` + secret + `","token":"` + secret + `"}`,
		`{"token":"` + secret + "\xff" + `"}`,
		`["` + secret + `" "` + secret + `"]`,
	} {
		_, err := Canonicalize([]byte(in))
		if err == nil {
			t.Fatalf("Canonicalize(%q) succeeded", in)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error %q quotes the input", err)
		}
	}
}

func TestAppend(t *testing.T) {
	dst := []byte("prefix:")
	got, err := Append(dst, []byte(`{"b":2,"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(`prefix:{"a":1,"b":2}`, string(got)); diff != "" {
		t.Errorf("Append (-want +got):\n%s", diff)
	}

	got, err = Append(got[:7], []byte(`{"a":1,"a":1}`))
	if err == nil {
		t.Fatal("Append accepted a duplicate name")
	}
	if string(got) != "prefix:" {
		t.Errorf("Append on error = %q, want dst unchanged", got)
	}
}

func TestMarshal(t *testing.T) {
	type inner struct {
		Zeta  int     `json:"zeta"`
		Alpha float64 `json:"alpha"`
	}
	v := struct {
		Name  string         `json:"name"`
		HTML  string         `json:"html"`
		Inner inner          `json:"inner"`
		Map   map[string]any `json:"map"`
		Skip  string         `json:"-"`
	}{
		Name:  "caf\u00e9",
		HTML:  "<a href='x'>&</a>",
		Inner: inner{Zeta: 1, Alpha: 2.50},
		Map:   map[string]any{"\U0001F600": 1, "\ufb33": 2, "a": nil},
		Skip:  "ignored",
	}
	got, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"html":"<a href='x'>&</a>","inner":{"alpha":2.5,"zeta":1},` +
		"\"map\":{\"a\":null,\"\U0001F600\":1,\"\ufb33\":2},\"name\":\"caf\u00e9\"}"
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("Marshal (-want +got):\n%s", diff)
	}

	for _, bad := range []any{math.NaN(), math.Inf(-1), make(chan int)} {
		if out, err := Marshal(bad); err == nil {
			t.Errorf("Marshal(%T) = %s, want error", bad, out)
		}
	}
}

func TestCompareUTF16(t *testing.T) {
	// Ordered by UTF-16 code units; each must sort strictly before the next.
	ordered := []string{
		"", "\x00", "\t", "0", "A", "a", "a\x00", "ab", "\u007f", "\u0080",
		"\u00f6", "\u07ff", "\u0800", "\u20ac", "\ud7ff",
		"\U00010000", "\U0001F600", "\U0010FFFF",
		"\ue000", "\ufb33", "\uffff",
	}
	for i := range ordered {
		for j := range ordered {
			got := sign(compareUTF16([]byte(ordered[i]), []byte(ordered[j])))
			if want := sign(i - j); got != want {
				t.Errorf("compareUTF16(%q, %q) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

// manyMembers returns an object with n members named m000, m001, ... in
// reverse or canonical order, to exercise the sort used for large objects.
func manyMembers(n int, reverse bool) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		k := i
		if reverse {
			k = n - 1 - i
		}
		fmt.Fprintf(&b, `"m%03d":%d`, k, k)
	}
	b.WriteByte('}')
	return b.String()
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func TestAppendStringMatchesCanonicalize(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "tab\tnl\nnul\x00 del\x7f", "résumé 日本語 😀 \u2028", "/slash/"} {
		got, ok := AppendString([]byte("x"), s)
		if !ok {
			t.Fatalf("%q: refused", s)
		}
		in, _ := json.Marshal(s)
		want, err := Canonicalize(in)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "x"+string(want) {
			t.Errorf("AppendString(%q) = %s, want %s", s, got[1:], want)
		}
	}
	if out, ok := AppendString([]byte("x"), "bad \xff"); ok || string(out) != "x" {
		t.Errorf("invalid UTF-8 accepted: %q %v", out, ok)
	}
}
