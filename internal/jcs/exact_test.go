package jcs

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
)

var exactCases = []struct {
	lit   string
	exact bool
}{
	{"0", true},
	{"-0", true},
	{"17", true},
	{"-17", true},
	{"0.1", true},
	{"1.0", true},
	{"1e2", true},
	{"1E+2", true},
	{"2.50", true},
	{"1e300", true},
	{"5e-324", true},
	{"0e999999999999", true},
	{"123456789012345", true},
	{"9007199254740991", true},
	{"-9007199254740991", true},
	{"9007199254740992", false},
	{"-9007199254740992", false},
	{"9007199254740993", false},
	{"12345678901234567891", false},
	{"9007199254740993.0", false},
	{"0.10000000000000000001", false},
	{"3.141592653589793238462643383279", false},
	{"1e400", false},
	{"-1e400", false},
	{"1e-400", false},
	{"1e-99999999999", false},
	{"", false},
	{"-", false},
}

func TestExactNumber(t *testing.T) {
	for _, tc := range exactCases {
		if got := ExactNumber([]byte(tc.lit)); got != tc.exact {
			t.Errorf("ExactNumber(%s) = %v, want %v", tc.lit, got, tc.exact)
		}
	}
}

func TestInexactNumber(t *testing.T) {
	for _, tc := range []struct {
		in    string
		path  string
		found bool
	}{
		{`{"id": 17, "name": "12345678901234567891"}`, "", false},
		{`{"amount": 12345678901234567891}`, ".amount", true},
		{`{"a": {"b": [1, 2, 9007199254740993]}}`, ".a.b[2]", true},
		{`{"odd key\u202e": 1e400}`, `["odd key\u202e"]`, true},
		{`[0.1, {"x": "\"1e400"}, 1.00000000000000000001]`, "[2]", true},
		{`12345678901234567891`, "", true},
	} {
		path, found := InexactNumber([]byte(tc.in))
		if path != tc.path || found != tc.found {
			t.Errorf("InexactNumber(%s) = %q, %v; want %q, %v", tc.in, path, found, tc.path, tc.found)
		}
	}
}

// FuzzExactNumber holds ExactNumber to its definition for any valid JSON
// number: an integer literal is exact when within ±(2^53−1); any other
// number when its canonical form has exactly the value written (compared
// as exact rationals).
func FuzzExactNumber(f *testing.F) {
	for _, tc := range exactCases {
		f.Add(tc.lit)
	}
	f.Add("4.50")
	f.Add("1E30")
	f.Add("-0.0e-0")
	f.Add("999999999999999999999e-5")
	f.Fuzz(func(t *testing.T, lit string) {
		got := ExactNumber([]byte(lit))
		var n json.Number
		if len(lit) == 0 || len(lit) > 80 || json.Unmarshal([]byte(lit), &n) != nil || string(n) != lit {
			if got && !validNumber(lit) {
				t.Fatalf("ExactNumber(%q) accepts what is not a JSON number", lit)
			}
			return
		}
		body := strings.TrimPrefix(lit, "-")
		if !strings.ContainsAny(body, ".eE") {
			want := new(big.Int)
			want.SetString(lit, 10)
			inRange := want.CmpAbs(big.NewInt(MaxExactInteger)) <= 0
			if got != inRange {
				t.Fatalf("ExactNumber(%s) = %v, want %v", lit, got, inRange)
			}
			return
		}
		if _, e, _ := strings.Cut(strings.ToLower(body), "e"); len(strings.TrimLeft(strings.TrimLeft(e, "+-"), "0")) > 4 {
			return // the oracle's rationals would be enormous
		}
		canon, err := Canonicalize([]byte(lit))
		if err != nil {
			if got {
				t.Fatalf("ExactNumber(%s) = true, but Canonicalize refuses it: %v", lit, err)
			}
			return
		}
		written, ok1 := new(big.Rat).SetString(lit)
		printed, ok2 := new(big.Rat).SetString(string(canon))
		if !ok1 || !ok2 {
			t.Fatalf("big.Rat cannot read %s or %s", lit, canon)
		}
		if want := written.Cmp(printed) == 0; got != want {
			t.Fatalf("ExactNumber(%s) = %v, but canonical form %s has equal value: %v", lit, got, canon, want)
		}
	})
}

func validNumber(s string) bool {
	var n json.Number
	return json.Unmarshal([]byte(s), &n) == nil && string(n) == s
}

// FuzzInexactNumber checks, for any JSON text, that InexactNumber agrees
// with a check of every number the decoder finds, and never panics.
func FuzzInexactNumber(f *testing.F) {
	f.Add([]byte(`{"amount": 12345678901234567891, "id": 17}`))
	f.Add([]byte(`[0.1, "9007199254740993", {"a\\"b": [1e400]}]`))
	f.Add([]byte(`{"x": -0, "y": 1.5e-7, "z": [true, null]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		path, found := InexactNumber(in)
		if !json.Valid(in) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(in))
		dec.UseNumber()
		want := false
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			if n, ok := tok.(json.Number); ok && !ExactNumber([]byte(n)) {
				want = true
			}
		}
		if found != want {
			t.Fatalf("InexactNumber(%s) found %v (at %q), the decoder's tokens %v", in, found, path, want)
		}
		if !found && path != "" {
			t.Fatalf("InexactNumber(%s) found nothing but names %q", in, path)
		}
	})
}

// BenchmarkInexactNumber is the check's cost on a typical argument object,
// whose numbers are all exact (the scan alone).
func BenchmarkInexactNumber(b *testing.B) {
	args := []byte(`{"id": 17, "fields": ["total", "vendor"], "ratio": 0.25, "note": "paid 1e400 times"}`)
	b.SetBytes(int64(len(args)))
	for b.Loop() {
		if _, found := InexactNumber(args); found {
			b.Fatal("found an inexact number")
		}
	}
}
