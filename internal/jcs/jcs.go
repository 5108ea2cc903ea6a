package jcs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
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
// extended slice. With a reused dst it canonicalizes without allocating. On
// error it returns dst unchanged in length (bytes beyond it may have been
// overwritten) and an *Error. dst's spare capacity must not overlap in.
func Append(dst, in []byte) ([]byte, error) {
	p := parserPool.Get().(*parser)
	p.in, p.pos, p.out, p.depth = in, 0, dst, 0
	err := p.document()
	out := p.out
	p.release()
	if err != nil {
		return dst, err
	}
	return out, nil
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

// parserPool recycles the parser's scratch space (member records, decoded
// names, reorder buffer) so steady-state canonicalization allocates only its
// output.
var parserPool = sync.Pool{New: func() any { return new(parser) }}

// maxPooledScratch caps the scratch a pooled parser keeps, so one huge
// document does not pin its buffers for the life of the process.
const maxPooledScratch = 64 << 10

func (p *parser) release() {
	p.in, p.out = nil, nil
	if cap(p.keys) > maxPooledScratch {
		p.keys = nil
	}
	if cap(p.scratch) > maxPooledScratch {
		p.scratch = nil
	}
	if cap(p.members) > maxPooledScratch/32 {
		p.members = nil
	}
	p.keys, p.scratch, p.members = p.keys[:0], p.scratch[:0], p.members[:0]
	parserPool.Put(p)
}
