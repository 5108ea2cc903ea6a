package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/writhq/writ/internal/jcs"
)

// Replacement is what every redacted value, or credential inside a
// string, becomes. It is a constant, never derived from the value, so a
// stored body cannot confirm a guess.
const Replacement = "[redacted]"

// MaxRecorded is the most paths Redact lists; past it the list ends with
// "(N more)".
const MaxRecorded = 100

// ErrInput is wrapped by Redact's error for a document that is not one
// acceptable JSON value.
var ErrInput = errors.New("redact: document is not valid JSON")

// Config adds to the defaults, which always apply.
type Config struct {
	// Keys are more member names to redact at any depth, compared
	// normalized like DefaultKeys.
	Keys []string
	// Paths are more path patterns (see the package documentation), such
	// as "arguments.**.ssn".
	Paths []string
}

// Validate reports a key or path that cannot be used.
func (c Config) Validate() error {
	for _, k := range c.Keys {
		if NormalizeKey(k) == "" {
			return fmt.Errorf("redaction key %q: empty once normalized", k)
		}
	}
	for _, p := range c.Paths {
		if err := ValidatePath(p); err != nil {
			return err
		}
	}
	return nil
}

// Engine redacts documents. It is safe for concurrent use.
type Engine struct {
	keys  keySet
	paths []pattern
	// compiled caches the patterns given with calls (a policy's
	// obligations repeat), up to maxCached of them.
	compiled sync.Map // string → compiled
	cached   atomic.Int32
}

type compiled struct {
	p   pattern
	err error
}

const maxCached = 4096

var defaultEngine, _ = New(Config{})

// Default returns the engine with the defaults only.
func Default() *Engine { return defaultEngine }

// New returns an engine applying the defaults and cfg.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{keys: newKeySet(cfg.Keys)}
	for _, p := range cfg.Paths {
		pat, _ := parsePattern(p)
		e.paths = append(e.paths, pat)
	}
	return e, nil
}

// Text replaces the credentials Detectors recognize in s, for text that
// is not JSON, such as a log line.
func (e *Engine) Text(s string) string {
	var sp spans
	scan(s, &sp, e.keys, strings.Contains(s, "AKIA") || strings.Contains(s, "ASIA"))
	out, _ := replace(s, &sp)
	return out
}

// Text is Default().Text.
func Text(s string) string { return defaultEngine.Text(s) }

// Redact returns the canonical JSON of doc, the document named root
// ("arguments", "output"), with every value the engine covers replaced,
// and the sorted paths it replaced. extra are more path patterns for this
// call, such as a policy's redact obligations; one that does not parse
// redacts the whole document. An empty doc gives nil, nil, nil. doc is
// not modified. The error wraps ErrInput when doc is not JSON.
func (e *Engine) Redact(root string, doc []byte, extra []string) ([]byte, []string, error) {
	doc = bytes.TrimSpace(doc)
	if len(doc) == 0 {
		return nil, nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("%w: data after the value", ErrInput)
	}
	var buf [8]pattern
	var sbuf [32]uint32
	w := walker{pats: buf[:0], states: sbuf[:0]}
	lo, hi, whole := e.start(&w, root, doc, extra)
	if !whole {
		var err error
		if v, err = w.value(v, lo, hi, 1); err != nil {
			return nil, nil, err
		}
	}
	if whole {
		if m, ok := v.(map[string]any); ok {
			for k := range m {
				m[k] = Replacement
			}
		} else {
			v = Replacement
		}
		w.found = append(w.found[:0], root)
		w.more = 0
	}
	out, err := encode(v)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	return out, w.recorded(), nil
}

// start readies w to walk doc, the document named root, with the
// engine's paths and extra, and returns the pattern positions of the
// document's top, or whole when the whole document is to be redacted.
func (e *Engine) start(w *walker, root string, doc []byte, extra []string) (lo, hi int, whole bool) {
	w.keys, w.root = e.keys, root
	// The AWS secret key shape is only looked for beside an access key
	// ID (or where escapes could hide one).
	w.aws = bytes.Contains(doc, []byte("AKIA")) || bytes.Contains(doc, []byte("ASIA")) || bytes.Contains(doc, []byte(`\u`))
	w.pats = append(w.pats, e.paths...)
	for _, p := range extra {
		pat, err := e.compile(p)
		if err != nil {
			whole = true
			continue
		}
		w.pats = append(w.pats, pat)
	}
	if whole || len(w.pats) > 1<<16 {
		return 0, 0, true
	}
	for i := range w.pats {
		w.add(0, uint32(i), 0)
	}
	return w.advance(0, len(w.states), step{name: root, key: true})
}

// Clean reports whether Redact would replace nothing in doc, the document
// named root; v is doc as encoding/json decodes it (numbers as float64 or
// json.Number alike: redaction never reads them). Then Redact's output is
// doc's canonical JSON, which a caller that has it need not build again.
// Clean reads v and changes nothing; false may also mean only that Redact
// must decide (a document nested too deep).
func (e *Engine) Clean(root string, v any, doc []byte, extra []string) bool {
	var buf [8]pattern
	var sbuf [32]uint32
	w := walker{pats: buf[:0], states: sbuf[:0]}
	lo, hi, whole := e.start(&w, root, doc, extra)
	return !whole && w.clean(v, lo, hi, 1)
}

// clean is value finding nothing to replace, without replacing it.
func (w *walker) clean(v any, lo, hi, depth int) bool {
	switch x := v.(type) {
	case string:
		var sp spans
		scan(x, &sp, w.keys, w.aws)
		return len(sp.list) == 0
	case map[string]any:
		if depth >= jcs.MaxDepth {
			return false
		}
		for k, m := range x {
			var sp spans
			if scan(k, &sp, w.keys, w.aws); len(sp.list) > 0 {
				return false // renameKeys would rename it
			}
			clo, chi, acc := w.advance(lo, hi, step{name: k, key: true})
			if acc || w.keys.has(k) || !w.clean(m, clo, chi, depth+1) {
				return false
			}
			w.states = w.states[:hi]
		}
	case []any:
		if depth >= jcs.MaxDepth {
			return false
		}
		for i, m := range x {
			clo, chi, acc := w.advance(lo, hi, step{index: i})
			if acc || !w.clean(m, clo, chi, depth+1) {
				return false
			}
			w.states = w.states[:hi]
		}
	}
	return true
}

func (e *Engine) compile(p string) (pattern, error) {
	if c, ok := e.compiled.Load(p); ok {
		c := c.(compiled)
		return c.p, c.err
	}
	pat, err := parsePattern(p)
	if e.cached.Load() < maxCached {
		if _, loaded := e.compiled.LoadOrStore(p, compiled{pat, err}); !loaded {
			e.cached.Add(1)
		}
	}
	return pat, err
}

// walker carries one Redact call through the document.
type walker struct {
	keys keySet
	root string
	aws  bool
	pats []pattern
	// states is a stack of pattern positions (pattern<<16 | segment): a
	// node's are a range of it, its children's are pushed above.
	states []uint32
	path   []step
	found  []string
	more   int
}

// add pushes pattern p at segment pos unless the range from lo holds it,
// with the positions a "**" there may skip to.
func (w *walker) add(lo int, p, pos uint32) {
	for {
		s := p<<16 | pos
		if slices.Contains(w.states[lo:], s) {
			return
		}
		w.states = append(w.states, s)
		pat := w.pats[p]
		if int(pos) >= len(pat) || pat[pos].kind != segAnyDepth {
			return
		}
		pos++
	}
}

// advance pushes the positions reached from states[lo:hi] by one step,
// and reports whether a pattern is then complete.
func (w *walker) advance(lo, hi int, st step) (int, int, bool) {
	nlo := len(w.states)
	for i := lo; i < hi; i++ {
		s := w.states[i]
		p, pos := s>>16, s&0xffff
		pat := w.pats[p]
		switch {
		case int(pos) == len(pat):
		case pat[pos].kind == segAnyDepth:
			w.add(nlo, p, pos)
		case pat[pos].matches(st):
			w.add(nlo, p, pos+1)
		}
	}
	acc := false
	for _, s := range w.states[nlo:] {
		if int(s&0xffff) == len(w.pats[s>>16]) {
			acc = true
			break
		}
	}
	return nlo, len(w.states), acc
}

var errTooDeep = fmt.Errorf("%w: nested deeper than %d", ErrInput, jcs.MaxDepth)

// value redacts inside v, whose pattern positions are states[lo:hi], and
// returns what replaces it.
func (w *walker) value(v any, lo, hi, depth int) (any, error) {
	switch x := v.(type) {
	case string:
		var sp spans
		scan(x, &sp, w.keys, w.aws)
		if out, changed := replace(x, &sp); changed {
			w.record()
			return out, nil
		}
	case map[string]any:
		if depth >= jcs.MaxDepth {
			return nil, errTooDeep
		}
		if err := w.renameKeys(x); err != nil {
			return nil, err
		}
		for k, m := range x {
			st := step{name: k, key: true}
			w.path = append(w.path, st)
			clo, chi, acc := w.advance(lo, hi, st)
			if acc || w.keys.has(k) {
				x[k] = Replacement
				w.record()
			} else if _, isStr := m.(string); isStr {
				r, err := w.value(m, clo, chi, depth+1)
				if err != nil {
					return nil, err
				}
				if r != m {
					x[k] = r
				}
			} else if _, err := w.value(m, clo, chi, depth+1); err != nil {
				return nil, err // objects and arrays are changed in place
			}
			w.states = w.states[:hi]
			w.path = w.path[:len(w.path)-1]
		}
	case []any:
		if depth >= jcs.MaxDepth {
			return nil, errTooDeep
		}
		for i, m := range x {
			st := step{index: i}
			w.path = append(w.path, st)
			clo, chi, acc := w.advance(lo, hi, st)
			if acc {
				x[i] = Replacement
				w.record()
			} else {
				r, err := w.value(m, clo, chi, depth+1)
				if err != nil {
					return nil, err
				}
				x[i] = r
			}
			w.states = w.states[:hi]
			w.path = w.path[:len(w.path)-1]
		}
	}
	return v, nil
}

// renameKeys replaces credentials inside member names of m. Renamed
// members that would collide get "#2", "#3"… appended.
func (w *walker) renameKeys(m map[string]any) error {
	var renames []string
	for k := range m {
		var sp spans
		scan(k, &sp, w.keys, w.aws)
		if len(sp.list) > 0 {
			renames = append(renames, k)
		}
	}
	if renames == nil {
		return nil
	}
	sort.Strings(renames)
	for _, k := range renames {
		var sp spans
		scan(k, &sp, w.keys, w.aws)
		nk, _ := replace(k, &sp)
		for n := 2; ; n++ {
			if _, taken := m[nk]; !taken {
				break
			}
			nk = fmt.Sprintf("%s#%d", nk, n)
		}
		m[nk] = m[k]
		delete(m, k)
		w.path = append(w.path, step{name: nk, key: true})
		w.record()
		w.path = w.path[:len(w.path)-1]
	}
	return nil
}

// record notes the current path as redacted.
func (w *walker) record() {
	if len(w.found) >= MaxRecorded {
		w.more++
		return
	}
	b := make([]byte, 0, len(w.root)+16*len(w.path))
	b = append(b, w.root...)
	for _, st := range w.path {
		b = appendStep(b, st)
	}
	w.found = append(w.found, string(b))
}

func (w *walker) recorded() []string {
	if len(w.found) == 0 {
		return nil
	}
	out := slices.Compact(slices.Sorted(slices.Values(w.found)))
	if w.more > 0 {
		out = append(out, fmt.Sprintf("(%d more)", w.more))
	}
	return out
}

// encode writes v as JSON and canonicalizes it (RFC 8785).
func encode(v any) ([]byte, error) {
	var buf [512]byte
	b, err := appendJSON(buf[:0], v)
	if err != nil {
		return nil, err
	}
	return jcs.Canonicalize(b)
}

func appendJSON(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		if x {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case json.Number:
		return append(dst, x...), nil
	case string:
		return appendString(dst, x)
	case []any:
		dst = append(dst, '[')
		for i, m := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendJSON(dst, m); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		dst = append(dst, '{')
		first := true
		for k, m := range x {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			var err error
			if dst, err = appendString(dst, k); err != nil {
				return nil, err
			}
			dst = append(dst, ':')
			if dst, err = appendJSON(dst, m); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	}
	return nil, fmt.Errorf("unexpected %T", v)
}

func appendString(dst []byte, s string) ([]byte, error) {
	out, ok := jcs.AppendString(dst, s)
	if !ok {
		return nil, errors.New("invalid UTF-8")
	}
	return out, nil
}
