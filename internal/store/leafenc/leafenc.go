// Package leafenc is how the stores keep a leaf's bytes on disk: as
// they are, or compressed (an S2 block) against the leaves that end the
// span before it.
//
// A leaf is the canonical JSON of an event, and most of it repeats from the
// leaves just before it: the keys, the task, principal, agent, credential,
// tool and policy version. A fixed dictionary cannot know those, which are
// a deployment's own, so each span of SpanSize leaves is compressed against
// the last RefCount leaves of the span before it, which are kept as they
// are. Reading a leaf takes its row and, once per span, the RefCount rows
// its dictionary is made of; nothing else depends on anything but itself,
// so a damaged row costs at most its span, and `writ ledger verify` finds
// it (a leaf that decodes wrong does not hash to the tree).
//
// The encoding is the store's business alone: what a store returns is the
// exact leaf that was committed. A row names its encoding, so rows written
// before compression, and rows that did not compress, are read as they are.
// SpanSize and RefCount are part of the encoding: rows written with them
// must stay readable, so they never change; other values would be an
// encoding number of their own.
package leafenc

import (
	"errors"
	"fmt"

	"github.com/klauspost/compress/s2"

	"github.com/writhq/writ/internal/store/bodyenc"
)

// The encodings a row names.
const (
	// Plain is the leaf as it is.
	Plain = 0
	// SpanDict is an S2 block against its span's dictionary (Dict).
	SpanDict = 1
)

const (
	// SpanSize is how many leaves a span holds: span k is the leaves
	// [k·SpanSize, (k+1)·SpanSize).
	SpanSize = 1024
	// RefCount is how many leaves end each span as they are: the next
	// span's dictionary.
	RefCount = 8
)

// MaxLeaf bounds what Unpack decompresses: a leaf is at most 65,535
// bytes (entry bundles give each a 16-bit length).
const MaxLeaf = 65535

// minSize is the size below which a leaf is kept as it is.
const minSize = 64

// Span returns the span of the leaf at index.
func Span(index uint64) uint64 { return index / SpanSize }

// IsRef reports whether the leaf at index is kept as it is for the next
// span's dictionary.
func IsRef(index uint64) bool { return index%SpanSize >= SpanSize-RefCount }

// Refs returns the indexes [start, end) of the leaves span's dictionary is
// made of, and false for span 0, which has none.
func Refs(span uint64) (start, end uint64, ok bool) {
	if span == 0 {
		return 0, 0, false
	}
	return span*SpanSize - RefCount, span * SpanSize, true
}

// Dict is a span's dictionary. It is safe for concurrent use.
type Dict struct {
	d *s2.Dict
	b []byte
}

// Bytes returns the leaves d is made of, one after the other, or their
// last s2.MaxDictSize bytes when they are longer. The caller must not
// change them.
func (d *Dict) Bytes() []byte { return d.b }

// ErrEncoding is the error of a row whose encoding this writ does not know,
// whose bytes do not decode, or whose span's dictionary is not there.
var ErrEncoding = errors.New("leaf encoding")

// NewDict makes a span's dictionary from its RefCount leaves, in index
// order.
func NewDict(refs [][]byte) (*Dict, error) {
	if len(refs) != RefCount {
		return nil, fmt.Errorf("%w: a span's dictionary is %d leaves, not %d", ErrEncoding, RefCount, len(refs))
	}
	var b []byte
	for _, r := range refs {
		b = append(b, r...)
	}
	// A dictionary is the last s2.MaxDictSize bytes of a longer one: the
	// leaves nearest the span (MakeDict would cut it so too; cutting it
	// here keeps no more than that for Bytes).
	if len(b) > s2.MaxDictSize {
		b = b[len(b)-s2.MaxDictSize:]
	}
	d := s2.MakeDict(b, nil)
	if d == nil {
		return nil, fmt.Errorf("%w: a span's dictionary of %d bytes is too small", ErrEncoding, len(b))
	}
	return &Dict{d: d, b: b}, nil
}

// Pack returns how to keep the leaf at index, with its span's dictionary d
// (nil for span 0): its encoding and the bytes to store. It compresses
// when that saves at least an eighth, and keeps the leaf as it is
// otherwise, and always for the leaves of the next span's dictionary.
func Pack(index uint64, leaf []byte, d *Dict) (encoding int, stored []byte) {
	if d == nil || IsRef(index) || len(leaf) < minSize || len(leaf) > MaxLeaf {
		return Plain, leaf
	}
	if c := bodyenc.Compress(d.d, leaf); c != nil {
		return SpanDict, c
	}
	return Plain, leaf
}

// Unpack returns the leaf a row of the given encoding stores, decoding into
// buf when it is large enough; d is the dictionary of the row's span, which
// only SpanDict needs.
func Unpack(encoding int, stored []byte, d *Dict, buf []byte) ([]byte, error) {
	switch encoding {
	case Plain:
		return stored, nil
	case SpanDict:
		if d == nil {
			return nil, fmt.Errorf("%w %d: its span's dictionary is missing", ErrEncoding, encoding)
		}
		n, err := s2.DecodedLen(stored)
		if err != nil {
			return nil, fmt.Errorf("%w %d: %v", ErrEncoding, encoding, err)
		}
		if n > MaxLeaf {
			return nil, fmt.Errorf("%w %d: %d bytes, over the limit of %d", ErrEncoding, encoding, n, MaxLeaf)
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		out, err := d.d.Decode(buf[:n], stored)
		if err != nil {
			return nil, fmt.Errorf("%w %d: %v", ErrEncoding, encoding, err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w %d: unknown to this version of writ", ErrEncoding, encoding)
}
