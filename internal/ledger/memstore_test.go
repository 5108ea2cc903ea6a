package ledger

import (
	"bytes"
	"context"
	"sort"
	"sync"
)

// memStore is an in-memory Store for the package's own unit tests. The real
// backends are tested against the same contract in store/storetest.
type memStore struct {
	mu     sync.Mutex
	leaves [][]byte
	bodies map[BodyRef]Body
	tiles  map[TileID][]byte
	cps    map[uint64][]byte
	meta   map[string]string
	fail   error // when set, Commit fails with it
}

func newMemStore() *memStore {
	return &memStore{bodies: map[BodyRef]Body{}, tiles: map[TileID][]byte{}, cps: map[uint64][]byte{}, meta: map[string]string{}}
}

func (m *memStore) Size(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(len(m.leaves)), nil
}

func (m *memStore) Commit(_ context.Context, b *Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if b.Start != uint64(len(m.leaves)) {
		return ErrConflict
	}
	for _, l := range b.Leaves {
		m.leaves = append(m.leaves, bytes.Clone(l))
	}
	for _, body := range b.Bodies {
		m.bodies[BodyRef{body.Index, body.Name}] = body
	}
	for _, r := range b.Erase {
		delete(m.bodies, r)
	}
	for id, h := range b.Tiles {
		m.tiles[id] = bytes.Clone(h)
	}
	if b.Checkpoint != nil {
		if _, ok := m.cps[b.Checkpoint.Size]; !ok {
			m.cps[b.Checkpoint.Size] = bytes.Clone(b.Checkpoint.Note)
		}
	}
	return nil
}

func (m *memStore) ReadTile(_ context.Context, id TileID) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tiles[id]
	if !ok {
		return nil, ErrNotFound
	}
	return t, nil
}

func (m *memStore) ReadLeaves(_ context.Context, start, end uint64) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	end = min(end, uint64(len(m.leaves)))
	if start >= end {
		return nil, nil
	}
	return append([][]byte(nil), m.leaves[start:end]...), nil
}

func (m *memStore) ScanLeaves(_ context.Context, start uint64, fn func(uint64, []byte) error) error {
	m.mu.Lock()
	leaves := append([][]byte(nil), m.leaves...)
	m.mu.Unlock()
	for i := start; i < uint64(len(leaves)); i++ {
		if err := fn(i, leaves[i]); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) sortedCPs() []StoredCheckpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []StoredCheckpoint
	for n, c := range m.cps {
		out = append(out, StoredCheckpoint{n, c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Size < out[j].Size })
	return out
}

func (m *memStore) LatestCheckpoint(context.Context) (StoredCheckpoint, error) {
	cps := m.sortedCPs()
	if len(cps) == 0 {
		return StoredCheckpoint{}, ErrNotFound
	}
	return cps[len(cps)-1], nil
}

func (m *memStore) ScanCheckpoints(_ context.Context, fn func(StoredCheckpoint) error) error {
	for _, c := range m.sortedCPs() {
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) ReadBody(_ context.Context, r BodyRef) (Body, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.bodies[r]
	if !ok {
		return Body{}, ErrNotFound
	}
	return b, nil
}

func (m *memStore) ScanBodies(_ context.Context, fn func(Body) error) error {
	m.mu.Lock()
	var bs []Body
	for _, b := range m.bodies {
		bs = append(bs, b)
	}
	m.mu.Unlock()
	sort.Slice(bs, func(i, j int) bool { return less(BodyRef{bs[i].Index, bs[i].Name}, BodyRef{bs[j].Index, bs[j].Name}) })
	for _, b := range bs {
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) Meta(_ context.Context, k string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.meta[k]
	if !ok {
		return "", ErrNotFound
	}
	return v, nil
}

func (m *memStore) InitMeta(_ context.Context, k, v string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.meta[k]; ok {
		return cur, nil
	}
	m.meta[k] = v
	return v, nil
}

func (m *memStore) Close() error { return nil }
