package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/bodyenc"
	"github.com/writhq/writ/internal/store/leafenc"
)

// Leaves are kept compressed against their span's dictionary
// (internal/store/leafenc): the last leaves of the span before, kept as
// they are; bodies against the same leaves, then bodyenc's fixed
// dictionary (bodyenc.Dict1Span). The dictionaries of the spans last used
// are cached; a span's never changes once its leaves are committed, since
// leaves are never rewritten. A read that needs one it has not got reads
// its leaves through a pool of its own (Store.refs), so that a scan
// holding a reader never waits for another.

// dictsKept is how many spans' dictionaries a store caches.
const dictsKept = 16

// spanDict is a span's dictionaries.
type spanDict struct {
	leaf *leafenc.Dict
	body *bodyenc.Span
}

// leafDict and bodyDict are d's dictionaries, nil when d is.
func (d *spanDict) leafDict() *leafenc.Dict {
	if d == nil {
		return nil
	}
	return d.leaf
}

func (d *spanDict) bodyDict() *bodyenc.Span {
	if d == nil {
		return nil
	}
	return d.body
}

func newSpanDict(refs [][]byte) (*spanDict, error) {
	d, err := leafenc.NewDict(refs)
	if err != nil {
		return nil, err
	}
	return &spanDict{leaf: d, body: bodyenc.NewSpan(d.Bytes())}, nil
}

type dictCache struct {
	mu    sync.Mutex
	m     map[uint64]*spanDict
	order []uint64
}

func (c *dictCache) get(span uint64) *spanDict {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[span]
}

func (c *dictCache) put(span uint64, d *spanDict) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[uint64]*spanDict{}
	}
	if _, ok := c.m[span]; ok {
		return
	}
	if len(c.order) >= dictsKept {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.m[span] = d
	c.order = append(c.order, span)
}

type rowsQueryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// readRefs returns the stored leaves [start, end), which must be kept as
// they are, or nil when the store does not hold them all.
func readRefs(ctx context.Context, q rowsQueryer, start, end uint64) ([][]byte, error) {
	rows, err := q.QueryContext(ctx, `SELECT idx, leaf, enc FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx`, int64(start), int64(end))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var (
			idx  int64
			leaf []byte
			enc  int
		)
		if err := rows.Scan(&idx, &leaf, &enc); err != nil {
			return nil, err
		}
		if uint64(idx) != start+uint64(len(out)) || enc != leafenc.Plain {
			return nil, fmt.Errorf("%w: leaf %d, of a span's dictionary, is stored with encoding %d", leafenc.ErrEncoding, idx, enc)
		}
		out = append(out, leaf)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) != int(end-start) {
		return nil, nil
	}
	return out, nil
}

// storedDict returns the dictionaries of span from the stored leaves, nil
// when there are none (span 0, or a span whose dictionary is not all
// stored yet, so that nothing of it can be compressed).
func (s *Store) storedDict(ctx context.Context, span uint64) (*spanDict, error) {
	if d := s.dicts.get(span); d != nil {
		return d, nil
	}
	start, end, ok := leafenc.Refs(span)
	if !ok {
		return nil, nil
	}
	refs, err := readRefs(ctx, s.refs, start, end)
	if err != nil || refs == nil {
		return nil, err
	}
	d, err := newSpanDict(refs)
	if err != nil {
		return nil, err
	}
	s.dicts.put(span, d)
	return d, nil
}

// commitDicts finds the dictionaries of the spans a commit of b writes
// into: cached, or made from the leaves they need, stored before b (read
// in tx) or in b. Those made from b are cached only once b is committed.
type commitDicts struct {
	s     *Store
	tx    *sql.Tx
	b     *ledger.Batch
	fresh map[uint64]*spanDict
	// last is the span get answered last, and its answer: a batch's
	// leaves and bodies are nearly all of one span.
	last     *spanDict
	lastSpan uint64
	haveLast bool
}

// get returns span's dictionaries, nil for a span with none.
func (c *commitDicts) get(ctx context.Context, span uint64) (*spanDict, error) {
	if c.haveLast && c.lastSpan == span {
		return c.last, nil
	}
	d, err := c.lookup(ctx, span)
	if err == nil {
		c.last, c.lastSpan, c.haveLast = d, span, true
	}
	return d, err
}

func (c *commitDicts) lookup(ctx context.Context, span uint64) (*spanDict, error) {
	if d := c.fresh[span]; d != nil {
		return d, nil
	}
	if d := c.s.dicts.get(span); d != nil {
		return d, nil
	}
	start, end, ok := leafenc.Refs(span)
	if !ok || end > c.b.Start+uint64(len(c.b.Leaves)) {
		// Span 0, or a body beyond the batch's leaves (which the ledger
		// never makes): no dictionary, and rows that need none.
		return nil, nil
	}
	var refs [][]byte
	if start < c.b.Start {
		stored, err := readRefs(ctx, c.tx, start, min(end, c.b.Start))
		if err != nil || stored == nil {
			return nil, err
		}
		refs = stored
	}
	for i := max(start, c.b.Start); i < end; i++ {
		refs = append(refs, c.b.Leaves[i-c.b.Start])
	}
	d, err := newSpanDict(refs)
	if err != nil {
		return nil, err
	}
	if end <= c.b.Start {
		c.s.dicts.put(span, d)
		return d, nil
	}
	if c.fresh == nil {
		c.fresh = map[uint64]*spanDict{}
	}
	c.fresh[span] = d
	return d, nil
}

// leafRows returns the rows of b's leaves.
func (c *commitDicts) leafRows(ctx context.Context) ([][]any, error) {
	rows := make([][]any, len(c.b.Leaves))
	for i, leaf := range c.b.Leaves {
		idx := c.b.Start + uint64(i)
		d, err := c.get(ctx, leafenc.Span(idx))
		if err != nil {
			return nil, err
		}
		enc, data := leafenc.Pack(idx, leaf, d.leafDict())
		rows[i] = []any{int64(idx), data, enc}
	}
	return rows, nil
}

// bodyRows returns the rows of b's bodies.
func (c *commitDicts) bodyRows(ctx context.Context) ([][]any, error) {
	rows := make([][]any, len(c.b.Bodies))
	for i, body := range c.b.Bodies {
		d, err := c.get(ctx, leafenc.Span(body.Index))
		if err != nil {
			return nil, err
		}
		enc, data := bodyenc.PackSpan(body.Data, d.bodyDict())
		rows[i] = []any{int64(body.Index), body.Name, body.Salt, data, enc}
	}
	return rows, nil
}

// committed caches the dictionaries made from b, now that it is stored.
func (c *commitDicts) committed() {
	for span, d := range c.fresh {
		c.s.dicts.put(span, d)
	}
}

// decoder decodes the rows of one read, keeping the dictionaries it used
// (the cache may let them go before the read is done), and the leaves of
// the next span's dictionary as they go by, so that a scan in index order
// reads dictionaries only for the span it starts in.
type decoder struct {
	s     *Store
	dicts map[uint64]*spanDict
	// nextSpan's dictionary leaves seen so far.
	nextSpan uint64
	next     [][]byte
	buf      []byte
}

func (s *Store) newDecoder() *decoder { return &decoder{s: s, dicts: map[uint64]*spanDict{}} }

func (dc *decoder) dict(ctx context.Context, span uint64) (*spanDict, error) {
	if d, ok := dc.dicts[span]; ok && d != nil {
		return d, nil
	}
	d := dc.s.dicts.get(span)
	if d == nil && dc.nextSpan == span && len(dc.next) == leafenc.RefCount {
		var err error
		if d, err = newSpanDict(dc.next); err != nil {
			return nil, err
		}
		dc.s.dicts.put(span, d)
	}
	if d == nil {
		var err error
		if d, err = dc.s.storedDict(ctx, span); err != nil {
			return nil, err
		}
	}
	if len(dc.dicts) > 4 {
		clear(dc.dicts)
	}
	dc.dicts[span] = d
	return d, nil
}

// leaf returns the leaf the row (idx, stored, enc) holds, valid until the
// next call.
func (dc *decoder) leaf(ctx context.Context, idx uint64, stored []byte, enc int) ([]byte, error) {
	if leafenc.IsRef(idx) && enc == leafenc.Plain {
		span := leafenc.Span(idx) + 1
		if start, _, _ := leafenc.Refs(span); idx == start {
			dc.nextSpan, dc.next = span, dc.next[:0]
		}
		if dc.nextSpan == span && idx == leafenc.SpanSize*span-leafenc.RefCount+uint64(len(dc.next)) {
			dc.next = append(dc.next, append([]byte(nil), stored...))
		}
	}
	if enc == leafenc.Plain {
		return stored, nil
	}
	d, err := dc.dict(ctx, leafenc.Span(idx))
	if err != nil {
		return nil, fmt.Errorf("leaf %d: %w", idx, err)
	}
	out, err := leafenc.Unpack(enc, stored, d.leafDict(), dc.buf)
	if err != nil {
		return nil, fmt.Errorf("leaf %d: %w", idx, err)
	}
	dc.buf = out
	return out, nil
}

// body returns the data of the body row of leaf idx, stored with enc.
func (dc *decoder) body(ctx context.Context, idx uint64, stored []byte, enc int) ([]byte, error) {
	if enc != bodyenc.Dict1Span {
		return bodyenc.Unpack(enc, stored)
	}
	d, err := dc.dict(ctx, leafenc.Span(idx))
	if err != nil {
		return nil, err
	}
	return bodyenc.UnpackSpan(enc, stored, d.bodyDict())
}
