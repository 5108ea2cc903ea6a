package jcs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"unsafe"
)

// MaxDepth is the deepest nesting of arrays and objects Canonicalize accepts.
// The top-level value counts as depth 1, so MaxDepth nested arrays are
// accepted and one more is rejected with ErrTooDeep. The limit bounds the
// stack a hostile input can make the parser use.
const MaxDepth = 1000

// Sentinel errors wrapped by *Error; test for them with errors.Is.
var (
	// ErrSyntax means the input is not a single well-formed JSON text.
	ErrSyntax = errors.New("invalid JSON")
	// ErrInvalidUnicode means a string holds invalid UTF-8 or an escaped
	// surrogate that is not part of a pair.
	ErrInvalidUnicode = errors.New("invalid Unicode in string")
	// ErrDuplicateKey means an object has two members with the same name.
	ErrDuplicateKey = errors.New("duplicate object member name")
	// ErrNumberRange means a number is too large to be a finite double.
	ErrNumberRange = errors.New("number out of double range")
	// ErrTooDeep means arrays and objects nest deeper than MaxDepth.
	ErrTooDeep = errors.New("nesting too deep")
)

// Error describes why an input cannot be canonicalized and where. Its message
// never quotes the input beyond a single offending byte, so it is safe to log
// even when the document carries sensitive values.
type Error struct {
	// Offset is the byte offset in the input at which the problem was found.
	Offset int
	// Err is one of the sentinel errors of this package.
	Err error

	detail string
}

func (e *Error) Error() string {
	return "jcs: " + e.detail + " at offset " + strconv.Itoa(e.Offset)
}

// Unwrap returns the sentinel error, for errors.Is.
func (e *Error) Unwrap() error { return e.Err }

// Canonicalize parses the JSON text in and returns its RFC 8785 canonical
// form in a newly allocated slice. It returns an *Error if in is not
// acceptable I-JSON; see the package documentation for what is rejected.
func Canonicalize(in []byte) ([]byte, error) {
	out, err := Append(make([]byte, 0, len(in)+16), in)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Append appends the canonical form of the JSON text in to dst and returns the
// extended slice. With a reused dst it typically canonicalizes without
// allocating. On error it returns dst unchanged and an *Error.
func Append(dst, in []byte) ([]byte, error) {
	p := parserPool.Get().(*parser)
	p.in, p.pos, p.depth = in, 0, 0
	err := p.document()
	if err == nil {
		dst = p.layout(dst)
	}
	p.release()
	return dst, err
}

// Marshal encodes v with encoding/json and canonicalizes the result. It
// inherits encoding/json's rules for Go values: struct tags apply, invalid
// UTF-8 in Go strings is replaced by U+FFFD, and NaN or infinite floats are an
// error.
func Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("jcs: marshal: %w", err)
	}
	return Canonicalize(b)
}

// parserPool recycles the parser's working buffers (token stream, member
// records, decoded names) so steady-state canonicalization allocates only its
// output.
var parserPool = sync.Pool{New: func() any { return new(parser) }}

// maxPooledBytes caps the buffers a pooled parser keeps, so one huge document
// does not pin its memory for the life of the process.
const maxPooledBytes = 64 << 10

func (p *parser) release() {
	p.in = nil
	p.out = trim(p.out, 1)
	p.keys = trim(p.keys, 1)
	p.members = trim(p.members, int(unsafe.Sizeof(member{})))
	p.reorders = trim(p.reorders, int(unsafe.Sizeof(reorder{})))
	p.spans = trim(p.spans, int(unsafe.Sizeof(span{})))
	parserPool.Put(p)
}

// trim empties s, dropping its backing array if larger than maxPooledBytes.
func trim[T any](s []T, size int) []T {
	if cap(s)*size > maxPooledBytes {
		return nil
	}
	return s[:0]
}
