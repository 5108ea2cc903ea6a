package task

// A decoded snapshot is millions of small values: half a million tasks
// each with its credential, history and event list. Made one by one they
// are most of what a start spends, in the allocator and then in the
// collector, which marks each object. The decoder takes them from slabs
// instead, a chunk at a time.

// slabMax bounds a slab's chunk: large enough that a big state is a few
// thousand allocations, small enough that a chunk is not a large object.
const slabMax = 1024

// slab hands out values of T from chunks made many at a time. The chunks
// grow from small ones, so a small snapshot costs little more than its
// values. A value keeps its chunk alive, so a slab is for what a state
// keeps about as long as the rest of its chunk.
type slab[T any] struct {
	free []T
	size int
}

func (s *slab[T]) refill(n int) {
	s.size = min(max(2*s.size, 16), slabMax)
	s.free = make([]T, max(s.size, n))
}

// one returns a new zero value.
func (s *slab[T]) one() *T {
	if len(s.free) == 0 {
		s.refill(1)
	}
	p := &s.free[0]
	s.free = s.free[1:]
	return p
}

// many returns n zero values; appending to them copies them elsewhere,
// never over the next ones'.
func (s *slab[T]) many(n int) []T {
	if n == 0 {
		return []T{}
	}
	if n > len(s.free) {
		if n > slabMax/4 {
			return make([]T, n)
		}
		s.refill(n)
	}
	out := s.free[:n:n]
	s.free = s.free[n:]
	return out
}
