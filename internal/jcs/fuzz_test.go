package jcs

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// FuzzCanonicalize checks, for any input, that Canonicalize does not panic
// and that when it accepts the input:
//   - the output is valid JSON and canonicalizes to itself;
//   - encoding/json decodes input and output to equal values (numbers
//     compared as float64);
//
// and that it rejects as ErrSyntax only what encoding/json also finds invalid.
func FuzzCanonicalize(f *testing.F) {
	for _, tc := range canonicalCases {
		f.Add([]byte(tc.in))
	}
	for _, tc := range errorCases {
		if len(tc.in) < 256 {
			f.Add([]byte(tc.in))
		}
	}
	f.Add([]byte(benchEvent))
	f.Add([]byte(`{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"literals":[null,true,false]}`))
	f.Add([]byte(`{"\u20ac":1,"\r":2,"\ufb33":3,"1":4,"\ud83d\ude00":5,"\u0080":6,"\u00f6":7}`))

	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonicalize(in)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			if e.Offset < 0 || e.Offset > len(in) {
				t.Fatalf("offset %d outside input of %d bytes", e.Offset, len(in))
			}
			if errors.Is(err, ErrSyntax) && json.Valid(in) {
				t.Fatalf("rejected as invalid JSON, which encoding/json accepts: %v", err)
			}
			return
		}
		if !json.Valid(in) {
			t.Fatalf("accepted input that encoding/json rejects; output %q", out)
		}
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("output is not valid JSON: %q", out)
		}
		again, err := Canonicalize(out)
		if err != nil {
			t.Fatalf("canonical output rejected: %v\noutput %q", err, out)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("not idempotent:\nfirst  %q\nsecond %q", out, again)
		}
		var vin, vout any
		if err := json.Unmarshal(in, &vin); err != nil {
			t.Fatalf("encoding/json cannot decode input: %v", err)
		}
		if err := json.Unmarshal(out, &vout); err != nil {
			t.Fatalf("encoding/json cannot decode output: %v", err)
		}
		if diff := cmp.Diff(vin, vout); diff != "" {
			t.Fatalf("input and output decode differently (-in +out):\n%s", diff)
		}
	})
}

// FuzzCompareUTF16 checks the member-name order against a direct comparison
// of UTF-16 code units.
func FuzzCompareUTF16(f *testing.F) {
	f.Add("a", "b")
	f.Add("\U0001F600", "\ufb33")
	f.Add("\ue000", "\U00010000")
	f.Add("ab", "a")
	f.Fuzz(func(t *testing.T, a, b string) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			return
		}
		want := slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
		if got := sign(compareUTF16([]byte(a), []byte(b))); got != want {
			t.Fatalf("compareUTF16(%q, %q) = %d, want %d", a, b, got, want)
		}
	})
}
