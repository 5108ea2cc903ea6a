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
	_ "embed"
	"errors"
	"fmt"

	"github.com/klauspost/compress/s2"
)

// The encodings a row names.
const (
	// Plain is the bytes as they are.
	Plain = 0
	// Dict1 is an S2 block against dict1.txt.
	Dict1 = 1
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
	if len(data) < minSize || len(data) > MaxSize {
		return Plain, data
	}
	c := dict1.Encode(make([]byte, 0, s2.MaxEncodedLen(len(data))), data)
	if c == nil || len(c) > len(data)-len(data)/8 {
		return Plain, data
	}
	return Dict1, c
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
		n, err := s2.DecodedLen(stored)
		if err != nil {
			return nil, fmt.Errorf("%w %d: %v", ErrEncoding, encoding, err)
		}
		if n > MaxSize {
			return nil, fmt.Errorf("%w %d: %d bytes, over the limit of %d", ErrEncoding, encoding, n, MaxSize)
		}
		out, err := dict1.Decode(make([]byte, n), stored)
		if err != nil {
			return nil, fmt.Errorf("%w %d: %v", ErrEncoding, encoding, err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w %d: unknown to this version of writ", ErrEncoding, encoding)
}
