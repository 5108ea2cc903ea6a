package leafenc

import (
	"context"
	"fmt"
	"sync"

	"github.com/writhq/writ/internal/store/bodyenc"
)

// What a store needs around the encoding, the same for every store: the
// dictionaries of the spans last used, cached (a span's never changes once
// its leaves are committed, since leaves are never rewritten); the
// dictionaries a commit packs its rows with, some of them made from the
// batch's own leaves; and a decoder for the rows of a read.

// Dicts is a span's dictionaries: its leaves' (Dict) and its bodies'
// (bodyenc.Span, made of the same leaves).
type Dicts struct {
	leaf *Dict
	body *bodyenc.Span
}

// NewDicts makes a span's dictionaries from its RefCount leaves, in index
// order.
func NewDicts(refs [][]byte) (*Dicts, error) {
	d, err := NewDict(refs)
	if err != nil {
		return nil, err
	}
	return &Dicts{leaf: d, body: bodyenc.NewSpan(d.Bytes())}, nil
}

// Leaf is the leaves' dictionary, nil when d is.
func (d *Dicts) Leaf() *Dict {
	if d == nil {
		return nil
	}
	return d.leaf
}

// Body is the bodies' dictionary, nil when d is.
func (d *Dicts) Body() *bodyenc.Span {
	if d == nil {
		return nil
	}
	return d.body
}

// RefReader returns the stored leaves [start, end) of a span's dictionary,
// or nil when the store does not hold them all. A leaf of a dictionary is
// always stored as it is (Pack keeps it so); one that is not is an error
// wrapping ErrEncoding.
type RefReader func(ctx context.Context, start, end uint64) ([][]byte, error)

// dictsKept is how many spans' dictionaries a Cache keeps.
const dictsKept = 16

// Cache keeps the dictionaries of the spans last used, and reads those it
// has not got through its RefReader. It is safe for concurrent use.
type Cache struct {
	read  RefReader
	mu    sync.Mutex
	m     map[uint64]*Dicts
	order []uint64
}

// NewCache returns a cache that reads dictionaries with read. A store
// gives it a reader of its own (a connection pool apart, say), so that a
// scan holding a reader never waits for another.
func NewCache(read RefReader) *Cache { return &Cache{read: read, m: map[uint64]*Dicts{}} }

func (c *Cache) get(span uint64) *Dicts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[span]
}

func (c *Cache) put(span uint64, d *Dicts) {
	c.mu.Lock()
	defer c.mu.Unlock()
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

// Stored returns the dictionaries of span from the stored leaves, nil
// when there are none (span 0, or a span whose dictionary is not all
// stored yet, so that nothing of it can be compressed).
func (c *Cache) Stored(ctx context.Context, span uint64) (*Dicts, error) {
	if d := c.get(span); d != nil {
		return d, nil
	}
	start, end, ok := Refs(span)
	if !ok {
		return nil, nil
	}
	refs, err := c.read(ctx, start, end)
	if err != nil || refs == nil {
		return nil, err
	}
	d, err := NewDicts(refs)
	if err != nil {
		return nil, err
	}
	c.put(span, d)
	return d, nil
}

// Commit finds the dictionaries of the spans a commit writes into:
// cached, or made from the leaves they need, stored before the batch or
// in it. Those made from the batch are cached only once Done says it is
// committed.
type Commit struct {
	c *Cache
	// read reads what was stored before the batch, in the writer's
	// transaction where the store has one.
	read   RefReader
	start  uint64
	leaves [][]byte
	fresh  map[uint64]*Dicts
	// last is the span get answered last, and its answer: a batch's
	// leaves and bodies are nearly all of one span.
	last     *Dicts
	lastSpan uint64
	haveLast bool
}

// Commit returns the dictionaries of a batch of leaves from index start
// on; read reads the leaves stored before start (nil: the cache's reader).
func (c *Cache) Commit(start uint64, leaves [][]byte, read RefReader) *Commit {
	if read == nil {
		read = c.read
	}
	return &Commit{c: c, read: read, start: start, leaves: leaves}
}

func (cm *Commit) get(ctx context.Context, span uint64) (*Dicts, error) {
	if cm.haveLast && cm.lastSpan == span {
		return cm.last, nil
	}
	d, err := cm.lookup(ctx, span)
	if err == nil {
		cm.last, cm.lastSpan, cm.haveLast = d, span, true
	}
	return d, err
}

func (cm *Commit) lookup(ctx context.Context, span uint64) (*Dicts, error) {
	if d := cm.fresh[span]; d != nil {
		return d, nil
	}
	if d := cm.c.get(span); d != nil {
		return d, nil
	}
	start, end, ok := Refs(span)
	if !ok || end > cm.start+uint64(len(cm.leaves)) {
		// Span 0, or a body beyond the batch's leaves (which the ledger
		// never makes): no dictionary, and rows that need none.
		return nil, nil
	}
	var refs [][]byte
	if start < cm.start {
		stored, err := cm.read(ctx, start, min(end, cm.start))
		if err != nil || stored == nil {
			return nil, err
		}
		refs = stored
	}
	for i := max(start, cm.start); i < end; i++ {
		refs = append(refs, cm.leaves[i-cm.start])
	}
	d, err := NewDicts(refs)
	if err != nil {
		return nil, err
	}
	if end <= cm.start {
		cm.c.put(span, d)
		return d, nil
	}
	if cm.fresh == nil {
		cm.fresh = map[uint64]*Dicts{}
	}
	cm.fresh[span] = d
	return d, nil
}

// Leaf returns how to store the batch's i-th leaf: its encoding and bytes.
func (cm *Commit) Leaf(ctx context.Context, i int) (encoding int, stored []byte, err error) {
	idx := cm.start + uint64(i)
	d, err := cm.get(ctx, Span(idx))
	if err != nil {
		return 0, nil, err
	}
	encoding, stored = Pack(idx, cm.leaves[i], d.Leaf())
	return encoding, stored, nil
}

// Body returns how to store the data of a body of the leaf at index.
func (cm *Commit) Body(ctx context.Context, index uint64, data []byte) (encoding int, stored []byte, err error) {
	d, err := cm.get(ctx, Span(index))
	if err != nil {
		return 0, nil, err
	}
	encoding, stored = bodyenc.PackSpan(data, d.Body())
	return encoding, stored, nil
}

// Done caches the dictionaries made from the batch, once it is stored.
func (cm *Commit) Done() {
	for span, d := range cm.fresh {
		cm.c.put(span, d)
	}
}

// Decoder decodes the rows of one read, keeping the dictionaries it used
// (the cache may let them go before the read is done), and the leaves of
// the next span's dictionary as they go by, so that a scan in index order
// reads dictionaries only for the span it starts in. It is not safe for
// concurrent use.
type Decoder struct {
	c     *Cache
	dicts map[uint64]*Dicts
	// nextSpan's dictionary leaves seen so far.
	nextSpan uint64
	next     [][]byte
	buf      []byte
}

// Decoder returns a decoder for one read.
func (c *Cache) Decoder() *Decoder { return &Decoder{c: c, dicts: map[uint64]*Dicts{}} }

func (dc *Decoder) dict(ctx context.Context, span uint64) (*Dicts, error) {
	if d, ok := dc.dicts[span]; ok && d != nil {
		return d, nil
	}
	d := dc.c.get(span)
	if d == nil && dc.nextSpan == span && len(dc.next) == RefCount {
		var err error
		if d, err = NewDicts(dc.next); err != nil {
			return nil, err
		}
		dc.c.put(span, d)
	}
	if d == nil {
		var err error
		if d, err = dc.c.Stored(ctx, span); err != nil {
			return nil, err
		}
	}
	if len(dc.dicts) > 4 {
		clear(dc.dicts)
	}
	dc.dicts[span] = d
	return d, nil
}

// Leaf returns the leaf the row (idx, stored, enc) holds: stored itself
// when it is kept as it is, or bytes of the decoder's that are valid until
// its next call.
func (dc *Decoder) Leaf(ctx context.Context, idx uint64, stored []byte, enc int) ([]byte, error) {
	if IsRef(idx) && enc == Plain {
		span := Span(idx) + 1
		if start, _, _ := Refs(span); idx == start {
			dc.nextSpan, dc.next = span, dc.next[:0]
		}
		if dc.nextSpan == span && idx == SpanSize*span-RefCount+uint64(len(dc.next)) {
			dc.next = append(dc.next, append([]byte(nil), stored...))
		}
	}
	if enc == Plain {
		return stored, nil
	}
	d, err := dc.dict(ctx, Span(idx))
	if err != nil {
		return nil, fmt.Errorf("leaf %d: %w", idx, err)
	}
	out, err := Unpack(enc, stored, d.Leaf(), dc.buf)
	if err != nil {
		return nil, fmt.Errorf("leaf %d: %w", idx, err)
	}
	dc.buf = out
	return out, nil
}

// LeafCopy is Leaf, returning bytes of their own when it decodes.
func (dc *Decoder) LeafCopy(ctx context.Context, idx uint64, stored []byte, enc int) ([]byte, error) {
	out, err := dc.Leaf(ctx, idx, stored, enc)
	if err != nil || enc == Plain {
		return out, err
	}
	return append([]byte(nil), out...), nil
}

// Body returns the data of the body row of leaf idx, stored with enc.
func (dc *Decoder) Body(ctx context.Context, idx uint64, stored []byte, enc int) ([]byte, error) {
	if enc != bodyenc.Dict1Span {
		return bodyenc.Unpack(enc, stored)
	}
	d, err := dc.dict(ctx, Span(idx))
	if err != nil {
		return nil, err
	}
	return bodyenc.UnpackSpan(enc, stored, d.Body())
}
