package task

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"time"

	"github.com/writhq/writ/internal/policy"
)

// The primitives of the snapshot encoding (snapshot.go): unsigned and
// signed varints, length-prefixed byte strings, and strings that repeat
// (task IDs, agents, tools) written once and then referred to by number.
// The reader checks every length against what is left, so a corrupt
// snapshot is an error, never a panic or an allocation it cannot back.

// maxInterned bounds the strings a snapshot refers to by number: the
// writer's table, and the reader's, stop growing there, so unique strings
// (action IDs, resources) do not make the table as large as the state.
const maxInterned = 1 << 16

var errCorrupt = errors.New("corrupt task snapshot")

// partSize is the most bytes a stored part of a snapshot holds
// (snapstore.go); a variable for tests.
var partSize = 1 << 20

type snapWriter struct {
	b    []byte
	seen map[string]uint64 // the strings numbered, by number
	// out, when set, takes the encoding a part at a time as it is made,
	// so that b never holds much more than a part; nil keeps all of it
	// in b.
	out *snapOut
}

// snapOut takes an encoding part by part: it hashes the bytes, and hands
// each part to put, which may not keep it. After put fails it is called
// no more, and err says why.
type snapOut struct {
	put   func(p []byte) error
	sum   hash.Hash
	parts int
	size  int
	err   error
}

func newSnapOut(put func(p []byte) error) *snapOut {
	return &snapOut{put: put, sum: sha256.New()}
}

func (o *snapOut) write(p []byte) {
	o.sum.Write(p)
	o.size += len(p)
	o.parts++
	if o.err == nil {
		o.err = o.put(p)
	}
}

// streamWriter returns a writer that hands its encoding to out.
func streamWriter(out *snapOut) *snapWriter {
	return &snapWriter{b: make([]byte, 0, partSize+partSize/8), seen: map[string]uint64{}, out: out}
}

// grew hands out the full parts b holds; every primitive calls it after
// it appends.
func (w *snapWriter) grew() {
	if w.out == nil || len(w.b) < partSize {
		return
	}
	p := w.b
	for len(p) >= partSize {
		w.out.write(p[:partSize])
		p = p[partSize:]
	}
	w.b = w.b[:copy(w.b, p)]
}

// finish hands out what is left, and returns the SHA-256 of the whole
// encoding.
func (w *snapWriter) finish() ([]byte, error) {
	if len(w.b) > 0 {
		w.out.write(w.b)
		w.b = w.b[:0]
	}
	return w.out.sum.Sum(nil), w.out.err
}

func (w *snapWriter) u(v uint64) {
	w.b = binary.AppendUvarint(w.b, v)
	w.grew()
}

func (w *snapWriter) i(v int64) {
	w.b = binary.AppendVarint(w.b, v)
	w.grew()
}

func (w *snapWriter) flag(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
	w.grew()
}

// raw writes s in full.
func (w *snapWriter) raw(s string) {
	w.b = binary.AppendUvarint(w.b, uint64(len(s)))
	w.b = append(w.b, s...)
	w.grew()
}

// rawBytes is raw of b's bytes, without making them a string.
func (w *snapWriter) rawBytes(b []byte) {
	w.b = binary.AppendUvarint(w.b, uint64(len(b)))
	w.b = append(w.b, b...)
	w.grew()
}

// str writes s as a number when it was written before, in full (and
// numbered, while the table has room) when not.
func (w *snapWriter) str(s string) {
	if n, ok := w.seen[s]; ok {
		w.u(n + 1)
		return
	}
	w.u(0)
	w.raw(s)
	if len(w.seen) < maxInterned {
		w.seen[s] = uint64(len(w.seen))
	}
}

// strs writes each of ss with str.
func (w *snapWriter) strs(ss ...string) {
	for _, s := range ss {
		w.str(s)
	}
}

// list writes a list, keeping nil apart from empty.
func (w *snapWriter) list(l []string) {
	if l == nil {
		w.u(0)
		return
	}
	w.u(uint64(len(l)) + 1)
	for _, s := range l {
		w.str(s)
	}
}

func (w *snapWriter) time(t time.Time) {
	if t.IsZero() {
		w.flag(false)
		return
	}
	w.flag(true)
	w.i(t.Unix())
	w.u(uint64(t.Nanosecond()))
}

type snapReader struct {
	b    []byte
	strs []string
	err  error
	// names are strings written in full that recur all the same (see
	// name), by themselves.
	names map[string]string
	// The slabs the decoded state is made from (snapslab.go).
	tasks   slab[Task]
	events  slab[eventList]
	creds   slab[Credential]
	history slab[taskHistory]
	counts  slab[keyedEntry[policy.Calls]]
	reached slab[keyedEntry[struct{}]]
	lists   slab[string]
	flights flightSlabs
	bytes   slab[byte]
}

func (r *snapReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{errCorrupt}, args...)...)
	}
	r.b = nil
}

func (r *snapReader) u() uint64 {
	v, n := binary.Uvarint(r.b)
	return r.took(n, v)
}

func (r *snapReader) i() int64 {
	v, n := binary.Varint(r.b)
	return int64(r.took(n, uint64(v)))
}

// took moves past a varint of n bytes (n <= 0: none could be read) and
// returns its value v, 0 when there was none.
func (r *snapReader) took(n int, v uint64) uint64 {
	if n <= 0 {
		r.fail("bad number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// int reads a count or small number, at most max.
func (r *snapReader) int(max int) int {
	v := r.u()
	if v > uint64(max) {
		r.fail("number %d out of range", v)
		return 0
	}
	return int(v)
}

// count reads how many items follow, each taking at least one byte.
func (r *snapReader) count() int {
	v := r.u()
	if v > uint64(len(r.b)) {
		r.fail("count %d beyond the end", v)
		return 0
	}
	return int(v)
}

func (r *snapReader) flag() bool {
	if len(r.b) == 0 {
		r.fail("truncated")
		return false
	}
	v := r.b[0]
	r.b = r.b[1:]
	if v > 1 {
		r.fail("bad flag %d", v)
	}
	return v == 1
}

func (r *snapReader) raw() string { return string(r.rawBytes()) }

// rawBytes reads what raw does, as the snapshot's own bytes.
func (r *snapReader) rawBytes() []byte {
	n := r.count()
	if r.err != nil {
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

func (r *snapReader) str() string {
	s, full, numbered := r.next()
	if !numbered {
		s = string(full)
		r.define(s)
	}
	return s
}

// next reads a string written with str: s when it was numbered, else its
// bytes in full, which the caller makes a string of and defines. After
// an error it answers "", as numbered.
func (r *snapReader) next() (s string, full []byte, numbered bool) {
	n := r.u()
	if r.err != nil {
		return "", nil, true
	}
	if n > 0 {
		if n > uint64(len(r.strs)) {
			r.fail("string %d not defined", n)
			return "", nil, true
		}
		return r.strs[n-1], nil, true
	}
	full = r.rawBytes()
	return "", full, r.err != nil
}

// define numbers s, a string written in full, as the writer did.
func (r *snapReader) define(s string) {
	if len(r.strs) < maxInterned {
		r.strs = append(r.strs, s)
	}
}

// strIn reads a string written with str that names a key of m, and
// returns it with m's value for it. Written in full (past the first
// maxInterned strings, which the first tens of thousands of tasks fill,
// every ID is), the string returned is the value's own copy, key(v),
// rather than one more of the same: a task's ID recurs in nearly every
// part of the snapshot.
func strIn[V any](r *snapReader, m map[string]V, key func(V) string) (string, V, bool) {
	s, full, numbered := r.next()
	var v V
	var ok bool
	if numbered {
		if r.err == nil {
			v, ok = m[s]
		}
		return s, v, ok
	}
	if v, ok = m[string(full)]; ok {
		s = key(v)
	} else {
		s = string(full)
	}
	r.define(s)
	return s, v, ok
}

// strAmong reads a string written with str that is likely one of l, and
// returns it as l's own copy when it is and was written in full.
func (r *snapReader) strAmong(l []string) string {
	s, full, numbered := r.next()
	if numbered {
		return s
	}
	s = ""
	for _, x := range l {
		if x == string(full) {
			s = x
			break
		}
	}
	if s == "" {
		s = string(full)
	}
	r.define(s)
	return s
}

// name reads a string written with str that recurs even when the writer
// no longer numbered it: the tools, operations and resources the
// histories count, written after the tasks filled the table. One copy
// of each such string, up to maxInterned of them, is kept to share.
func (r *snapReader) name() string {
	s, full, numbered := r.next()
	if numbered {
		return s
	}
	s, ok := r.names[string(full)]
	if !ok {
		s = string(full)
		if r.names == nil {
			r.names = map[string]string{}
		}
		if len(r.names) < maxInterned {
			r.names[s] = s
		}
	}
	r.define(s)
	return s
}

func (r *snapReader) list() []string {
	n := r.count()
	if n == 0 || r.err != nil {
		return nil
	}
	out := r.lists.many(n - 1)
	for i := range out {
		out[i] = r.str()
	}
	return out
}

func (r *snapReader) time() time.Time {
	if !r.flag() {
		return time.Time{}
	}
	sec := r.i()
	ns := r.int(999_999_999)
	return time.Unix(sec, int64(ns)).UTC()
}
