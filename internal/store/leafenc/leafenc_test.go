package leafenc

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"github.com/klauspost/compress/s2"
)

func leaf(i int) []byte {
	h := sha256.Sum256([]byte(fmt.Sprint(i)))
	return []byte(fmt.Sprintf(`{"agent":"spiffe://example.org/agent/a","commitments":{"input":"sha256:%x"},`+
		`"data":{"action_id":"act_%d","tool":"kb.search"},"policy_version":"sha256:%x","task_id":"tsk_1","type":"action.authorized","v":2}`,
		h, i, sha256.Sum256([]byte("policy"))))
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func dict(t testing.TB) *Dict {
	var refs [][]byte
	for i := range RefCount {
		refs = append(refs, leaf(i))
	}
	d, err := NewDict(refs)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSpans(t *testing.T) {
	for _, tc := range []struct {
		index uint64
		span  uint64
		ref   bool
	}{{0, 0, false}, {SpanSize - RefCount - 1, 0, false}, {SpanSize - RefCount, 0, true}, {SpanSize - 1, 0, true},
		{SpanSize, 1, false}, {3*SpanSize - 1, 2, true}} {
		if s, r := Span(tc.index), IsRef(tc.index); s != tc.span || r != tc.ref {
			t.Errorf("leaf %d: span %d, ref %v; want %d, %v", tc.index, s, r, tc.span, tc.ref)
		}
	}
	if _, _, ok := Refs(0); ok {
		t.Error("span 0 has a dictionary")
	}
	if s, e, ok := Refs(2); !ok || s != 2*SpanSize-RefCount || e != 2*SpanSize {
		t.Errorf("Refs(2) = %d, %d, %v", s, e, ok)
	}
}

func TestRoundTrip(t *testing.T) {
	d := dict(t)
	for _, tc := range []struct {
		name  string
		index uint64
		leaf  []byte
		d     *Dict
		enc   int
	}{
		{"a call", SpanSize + 3, leaf(100), d, SpanDict},
		{"span 0 has no dictionary", 3, leaf(100), nil, Plain},
		{"a leaf of the next span's dictionary", 2*SpanSize - 1, leaf(100), d, Plain},
		{"short", SpanSize + 3, []byte(`{"n":1}`), d, Plain},
		{"incompressible", SpanSize + 3, random(500), d, Plain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, stored := Pack(tc.index, tc.leaf, tc.d)
			if enc != tc.enc {
				t.Fatalf("encoding %d, want %d", enc, tc.enc)
			}
			if enc == SpanDict && len(stored) > len(tc.leaf)/3 {
				t.Errorf("%d bytes kept in %d", len(tc.leaf), len(stored))
			}
			got, err := Unpack(enc, stored, tc.d, nil)
			if err != nil || !bytes.Equal(got, tc.leaf) {
				t.Errorf("Unpack: %q, %v", got, err)
			}
		})
	}
}

func TestUnpackRefuses(t *testing.T) {
	d := dict(t)
	_, stored := Pack(SpanSize+1, leaf(50), d)
	for _, tc := range []struct {
		name   string
		enc    int
		stored []byte
		d      *Dict
	}{
		{"no dictionary", SpanDict, stored, nil},
		{"unknown encoding", 9, stored, d},
		{"damaged", SpanDict, stored[:len(stored)/2], d},
		{"over the limit", SpanDict, []byte{0x80, 0x80, 0x10}, d},
		{"empty", SpanDict, nil, d},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := Unpack(tc.enc, tc.stored, tc.d, nil); !errors.Is(err, ErrEncoding) {
				t.Errorf("Unpack = %q, %v; want an encoding error", got, err)
			}
		})
	}
	if _, err := NewDict([][]byte{leaf(1)}); !errors.Is(err, ErrEncoding) {
		t.Errorf("a dictionary of one leaf: %v", err)
	}
}

// TestLongDictionary: a span's dictionary of leaves longer than S2 takes
// is their last bytes, and still packs and unpacks.
func TestLongDictionary(t *testing.T) {
	var refs [][]byte
	for i := range RefCount {
		refs = append(refs, append(random(12000), leaf(i)...))
	}
	d, err := NewDict(refs)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(d.Bytes()); n != s2.MaxDictSize {
		t.Errorf("a dictionary of %d bytes, want the last %d", n, s2.MaxDictSize)
	}
	enc, stored := Pack(SpanSize+1, leaf(3), d)
	if got, err := Unpack(enc, stored, d, nil); enc != SpanDict || err != nil || !bytes.Equal(got, leaf(3)) {
		t.Errorf("encoding %d: %v", enc, err)
	}
}

// FuzzUnpack: whatever a row holds, Unpack returns an error or at most
// MaxLeaf bytes, and never panics.
func FuzzUnpack(f *testing.F) {
	d := dict(f)
	_, stored := Pack(SpanSize+1, leaf(50), d)
	f.Add(stored)
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := Unpack(SpanDict, b, d, nil)
		if err == nil && len(out) > MaxLeaf {
			t.Fatalf("%d bytes out", len(out))
		}
	})
}

func BenchmarkPack(b *testing.B) {
	d, l := dict(b), leaf(100)
	b.SetBytes(int64(len(l)))
	for b.Loop() {
		Pack(SpanSize+1, l, d)
	}
}

func BenchmarkUnpack(b *testing.B) {
	d, l := dict(b), leaf(100)
	enc, stored := Pack(SpanSize+1, l, d)
	buf := make([]byte, 0, len(l))
	b.SetBytes(int64(len(l)))
	for b.Loop() {
		Unpack(enc, stored, d, buf)
	}
}
