package bodyenc

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// samples are bodies of the shapes writ records: policy inputs written by
// a dev server, random bytes and the edge sizes.
func samples(t testing.TB) map[string][]byte {
	out := map[string][]byte{"empty": {}, "short": []byte(`{"id":17}`)}
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	random := make([]byte, 4096)
	rand.Read(random)
	out["random"] = random
	out["zeros"] = make([]byte, 1<<20)
	return out
}

// TestRoundTrip: every body comes back byte for byte; the policy inputs
// are stored compressed, random bytes as they are.
func TestRoundTrip(t *testing.T) {
	for name, b := range samples(t) {
		enc, stored := Pack(b)
		got, err := Unpack(enc, stored)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s: encoding %d, %d bytes stored: got %d bytes back, %v", name, enc, len(stored), len(got), err)
		}
		t.Logf("%s: %d bytes, stored in %d (encoding %d)", name, len(b), len(stored), enc)
		switch name {
		case "random", "empty", "short":
			if enc != Plain {
				t.Errorf("%s stored with encoding %d, want it as it is", name, enc)
			}
		default:
			if enc != Dict1 || len(stored) > len(b)/3 {
				t.Errorf("%s stored in %d of %d bytes with encoding %d, want a third at most", name, len(stored), len(b), enc)
			}
		}
	}
}

// TestUnpackRefuses: an unknown encoding, and bytes that are not a frame
// of the dictionary's, are errors, never a guess.
func TestUnpackRefuses(t *testing.T) {
	_, c := Pack(samples(t)["input-api.json"])
	for name, tc := range map[string]struct {
		enc  int
		data []byte
	}{
		"unknown encoding": {7, c},
		"not zstd":         {Dict1, []byte(`{"plain":"json"}`)},
		"truncated":        {Dict1, c[:len(c)/2]},
	} {
		if _, err := Unpack(tc.enc, tc.data); !errors.Is(err, ErrEncoding) {
			t.Errorf("%s: %v, want ErrEncoding", name, err)
		}
	}
}

// FuzzUnpack: whatever a row holds, Unpack returns bytes or an error; and
// whatever is packed comes back.
func FuzzUnpack(f *testing.F) {
	for _, b := range samples(f) {
		enc, stored := Pack(b)
		f.Add(enc, stored)
		f.Add(Plain, b)
	}
	f.Fuzz(func(t *testing.T, enc int, data []byte) {
		if out, err := Unpack(enc, data); err == nil && len(out) > MaxSize {
			t.Fatalf("%d bytes out", len(out))
		}
		e, stored := Pack(data)
		if got, err := Unpack(e, stored); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip of %d bytes: %v", len(data), err)
		}
	})
}

func BenchmarkPack(b *testing.B) {
	in := samples(b)["input-api.json"]
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		Pack(in)
	}
}

func BenchmarkUnpack(b *testing.B) {
	enc, c := Pack(samples(b)["input-api.json"])
	b.ReportAllocs()
	for b.Loop() {
		Unpack(enc, c)
	}
}

// span is a span dictionary of leaves naming the principal, agent and task
// of the samples' policy inputs, as a deployment's leaves would.
func span(t testing.TB) *Span {
	b, err := os.ReadFile("testdata/input-api.json")
	if err != nil {
		t.Fatal(err)
	}
	return NewSpan(bytes.Repeat(b[:len(b)/2], 2))
}

// TestSpanRoundTrip: against a span's dictionary every body comes back
// byte for byte, a policy input in fewer bytes than against the fixed
// dictionary alone; without the span's dictionary the row is an error.
func TestSpanRoundTrip(t *testing.T) {
	sp := span(t)
	for name, b := range samples(t) {
		enc, stored := PackSpan(b, sp)
		got, err := UnpackSpan(enc, stored, sp)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s: encoding %d: got %d bytes back, %v", name, enc, len(got), err)
		}
		if name != "input-api.json" {
			continue
		}
		_, fixed := Pack(b)
		if enc != Dict1Span || len(stored) >= len(fixed) {
			t.Errorf("%s: encoding %d in %d bytes; the fixed dictionary alone takes %d", name, enc, len(stored), len(fixed))
		}
		for _, f := range []func() ([]byte, error){
			func() ([]byte, error) { return Unpack(enc, stored) },
			func() ([]byte, error) { return UnpackSpan(enc, stored, nil) },
		} {
			if _, err := f(); !errors.Is(err, ErrEncoding) {
				t.Errorf("%s without its span's dictionary: %v", name, err)
			}
		}
	}
	if enc, _ := PackSpan(samples(t)["input-api.json"], nil); enc != Dict1 {
		t.Errorf("PackSpan without a span: encoding %d", enc)
	}
}

// FuzzUnpackSpan: whatever a row holds, UnpackSpan returns bytes or an
// error; and whatever is packed comes back.
func FuzzUnpackSpan(f *testing.F) {
	sp := span(f)
	for _, b := range samples(f) {
		enc, stored := PackSpan(b, sp)
		f.Add(enc, stored)
	}
	f.Fuzz(func(t *testing.T, enc int, data []byte) {
		if out, err := UnpackSpan(enc, data, sp); err == nil && len(out) > MaxSize {
			t.Fatalf("%d bytes out", len(out))
		}
		e, stored := PackSpan(data, sp)
		if got, err := UnpackSpan(e, stored, sp); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip of %d bytes: %v", len(data), err)
		}
	})
}
