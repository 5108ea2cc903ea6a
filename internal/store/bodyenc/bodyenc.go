// Package bodyenc is how the stores keep a body's bytes on disk: as they
// are, or compressed (S2, the Snappy extension, in its block format)
// against a fixed dictionary of the shapes writ records most: the policy
// inputs of tasks and calls, and tool results. A policy input of about
// 1,500 bytes is kept in about 300, in a few microseconds.
//
// The encoding is the store's business alone. A body's commitment in its
// leaf is over its salt and its exact bytes, which Unpack gives back; what
// a store returns is what was committed, whatever it kept on disk. A row
// names its encoding, so rows written before compression, and rows that
// did not compress, are read as they are.
//
// A dictionary, once released, never changes: rows encoded with it must
// stay readable. A better one gets an encoding number of its own.
package bodyenc

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/s2"
)

// The encodings a row names.
const (
	// Plain is the bytes as they are.
	Plain = 0
	// Dict1 is an S2 block against dict1.txt.
	Dict1 = 1
	// Dict1Span is an S2 block against the leaves the dictionary of its
	// leaf's span is made of followed by dict1.txt (internal/store/leafenc):
	// a deployment's own principals, agents, tasks and tools, which a body
	// repeats. Only the SQLite store, which keeps leaves that way, writes
	// it. Leaves are never erased and hold no body's bytes, so a body
	// erased leaves nothing of itself in another's dictionary.
	Dict1Span = 2
)

// MaxSize bounds what Unpack decompresses, so that a damaged row cannot
// make a reader allocate without end. It is far above any body the ledger
// accepts.
const MaxSize = 256 << 20

// minSize is the size below which a body is kept as it is.
const minSize = 64

//go:embed dict1.txt
var dict1Bytes []byte

// dict1 starts its search at the start shared by every policy input.
var dict1 = s2.MakeDict(dict1Bytes, []byte(`{"version":1,"point":"`))

// Pack returns how to keep data: its encoding and the bytes to store.
// It compresses when that saves at least an eighth, and keeps data as it
// is otherwise. It is safe for concurrent use.
func Pack(data []byte) (encoding int, stored []byte) {
	return pack(dict1, Dict1, data)
}

// pack is Pack and PackSpan against d, which stands for encoding.
func pack(d *s2.Dict, encoding int, data []byte) (int, []byte) {
	if len(data) < minSize || len(data) > MaxSize {
		return Plain, data
	}
	if c := Compress(d, data); c != nil {
		return encoding, c
	}
	return Plain, data
}

// Span is the dictionary of Dict1Span for one span. It is safe for
// concurrent use.
type Span struct{ d *s2.Dict }

// NewSpan returns the dictionary of Dict1Span for the span whose leaf
// dictionary is made of refs (leafenc.Dict.Bytes).
func NewSpan(refs []byte) *Span {
	// The leaves come first: S2's encoder finds the later of two places
	// that start alike, so that a body that shares little with the leaves
	// loses nothing of dict1. MakeDict keeps the last s2.MaxDictSize bytes
	// of a longer one, so dict1 is always all there.
	b := make([]byte, 0, len(dict1Bytes)+len(refs))
	return &Span{d: s2.MakeDict(append(append(b, refs...), dict1Bytes...), []byte(`{"version":1,"point":"`))}
}

// PackSpan is Pack against span sp's dictionary (Dict1Span), or Pack's own
// when sp is nil.
func PackSpan(data []byte, sp *Span) (encoding int, stored []byte) {
	if sp == nil {
		return Pack(data)
	}
	return pack(sp.d, Dict1Span, data)
}

// UnpackSpan is Unpack for a row that may be Dict1Span, whose span's
// dictionary is sp.
func UnpackSpan(encoding int, stored []byte, sp *Span) ([]byte, error) {
	if encoding != Dict1Span {
		return Unpack(encoding, stored)
	}
	if sp == nil {
		return nil, fmt.Errorf("%w %d: its span's dictionary is missing", ErrEncoding, encoding)
	}
	return decode(sp.d, encoding, stored)
}

// pooledMax is the largest scratch buffer Compress keeps for the next.
const pooledMax = 64 << 10

// scratch holds Compress's buffers, so that packing a row allocates only
// the bytes it keeps, not room for the worst case.
var scratch = sync.Pool{New: func() any { return new([]byte) }}

// Compress returns data as an S2 block against d, in a slice of its own,
// when that saves at least an eighth of it, and nil otherwise. It is safe
// for concurrent use.
func Compress(d *s2.Dict, data []byte) []byte {
	n := s2.MaxEncodedLen(len(data))
	if n < 0 {
		return nil // too large for a block
	}
	if n > pooledMax {
		c := d.Encode(make([]byte, 0, n), data)
		if c == nil || len(c) > len(data)-len(data)/8 {
			return nil
		}
		return c
	}
	bp := scratch.Get().(*[]byte)
	defer scratch.Put(bp)
	if cap(*bp) < n {
		*bp = make([]byte, 0, pooledMax)
	}
	c := d.Encode((*bp)[:0], data)
	if c == nil || len(c) > len(data)-len(data)/8 {
		return nil
	}
	return bytes.Clone(c)
}

// ErrEncoding is the error of a row whose encoding this writ does not know,
// or whose bytes do not decode.
var ErrEncoding = errors.New("body encoding")

// Unpack returns the bytes a row of the given encoding stores. It is safe
// for concurrent use.
func Unpack(encoding int, stored []byte) ([]byte, error) {
	switch encoding {
	case Plain:
		return stored, nil
	case Dict1:
		return decode(dict1, encoding, stored)
	case Dict1Span:
		return nil, fmt.Errorf("%w %d: its span's dictionary is missing", ErrEncoding, encoding)
	}
	return nil, fmt.Errorf("%w %d: unknown to this version of writ", ErrEncoding, encoding)
}

func decode(d *s2.Dict, encoding int, stored []byte) ([]byte, error) {
	n, err := s2.DecodedLen(stored)
	if err != nil {
		return nil, fmt.Errorf("%w %d: %v", ErrEncoding, encoding, err)
	}
	if n > MaxSize {
		return nil, fmt.Errorf("%w %d: %d bytes, over the limit of %d", ErrEncoding, encoding, n, MaxSize)
	}
	out, err := d.Decode(make([]byte, n), stored)
	if err != nil {
		return nil, fmt.Errorf("%w %d: %v", ErrEncoding, encoding, err)
	}
	return out, nil
}
