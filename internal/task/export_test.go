package task

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/internal/policy"
)

// StateDiff returns how the state of a differs from b's, "" when it does
// not: every task, approval, credential and action, and what was skipped.
func StateDiff(a, b *Service) string {
	a.smu.Lock()
	defer a.smu.Unlock()
	b.smu.Lock()
	defer b.smu.Unlock()
	// The ring of recent completions is compared as a set: a lone
	// server applies concurrent commits in the order they return, a
	// replay in index order, and the ring is the same set either way
	// until it wraps.
	ring := cmp.Comparer(func(x, y recentDone) bool { return maps.Equal(x.tasks, y.tasks) })
	// The details of the latest actions are a cache (flight.go): a
	// snapshot leaves them out.
	details := cmp.Comparer(func(x, y recentDetails) bool { return true })
	// The actions in flight are compared as what they hold: where the
	// table keeps each, and the numbers it gives kinds, follow the
	// order they came in.
	actions := cmp.Comparer(func(x, y actionSet) bool { return slices.Equal(flightsOf(&x), flightsOf(&y)) })
	kinds := cmp.Comparer(func(x, y actionKind) bool {
		x.num, y.num = 0, 0
		return x == y
	})
	// A task's kinds in flight are compared as a set: which is first
	// follows the order they came in.
	flights := cmp.Comparer(func(x, y taskFlights) bool {
		return x.n == y.n && cmp.Equal(kindsOf(&x), kindsOf(&y), kinds)
	})
	// A history's counts are compared as what they hold: past
	// keyedSmall keys a live state keeps them in the order they came,
	// a decoded one in key order.
	// The queue of the table's calls by index (spill.go) keeps calls
	// that left the table until the window passes them; what it orders
	// is the table, compared above.
	queue := cmp.Comparer(func(x, y spillQueue) bool { return true })
	counts := cmp.Comparer(sameKeyed[policy.Calls])
	reached := cmp.Comparer(sameKeyed[struct{}])
	return cmp.Diff(a.st, b.st, ring, details, actions, kinds, flights, queue, counts, reached, cmp.Exporter(func(reflect.Type) bool { return true }))
}

func sameKeyed[V comparable](x, y keyed[V]) bool {
	return (x.s == nil) == (y.s == nil) && slices.Equal(x.sorted(), y.sorted())
}

// kindsOf returns the kinds of tf in flight by key.
func kindsOf(tf *taskFlights) map[[3]string]actionKind {
	m := map[[3]string]actionKind{}
	tf.each(func(k *actionKind) { m[kindKey(k)] = *k })
	return m
}

// flightsOf lists the actions in flight of s in order.
func flightsOf(s *actionSet) []string {
	var l []string
	s.each(func(id string, f flight) {
		k := f.kind
		l = append(l, fmt.Sprintf("%q %q %q %q %q %d %d", id, k.taskID, k.jti, k.tool, k.operation, k.n, f.index))
	})
	return l
}

// StatePosition returns the first index the state of s has not applied.
func StatePosition(s *Service) uint64 {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.next
}

// ActionsHeld returns how many actions in flight the state of s holds in
// its table (those past the window it keeps as a count: CallsPastWindow).
func ActionsHeld(s *Service) int {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.st.actions.len()
}

// SetRecentKept sets how many completed actions a state made afterwards
// remembers without the store, until the returned function restores it.
func SetRecentKept(n int) (restore func()) {
	old := recentKept
	recentKept = n
	return func() { recentKept = old }
}

// EncodeSnapshot encodes st as a snapshot as of index through, forgetting
// as of swept (which changes st as a sweep would).
func EncodeSnapshot(st *State, through uint64, swept time.Time) []byte {
	return encodeState(st, through, swept)
}

// DecodeSnapshot decodes a snapshot.
func DecodeSnapshot(b []byte) (*State, error) {
	st, _, err := decodeState(b)
	return st, err
}

// ProjectionRows returns the rows the projection tables hold for st.
func ProjectionRows(st *State) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	for _, tb := range tables {
		out[tb.name] = tb.rows(st, nil)
	}
	return out
}

// SnapshotThrough returns the index the stored snapshot covers, false
// when there is none.
func SnapshotThrough(s *Service) (uint64, bool) {
	r, err := readSnapshot(context.Background(), s.cfg.DB, dialectOf(s.cfg.Store))
	if err != nil || r == nil {
		return 0, false
	}
	return r.through, true
}

// StateBytes encodes the state of s as a snapshot would, forgetting as a
// sweep at now does.
func StateBytes(s *Service, now time.Time) []byte {
	s.smu.Lock()
	defer s.smu.Unlock()
	return encodeState(s.st, 0, now)
}

// ForgeSnapshot rewrites the stored snapshot of s with change made to its
// state, under a MAC that verifies.
func ForgeSnapshot(s *Service, change func(*State)) error {
	ctx := context.Background()
	d := dialectOf(s.cfg.Store)
	r, err := readSnapshot(ctx, s.cfg.DB, d)
	if err != nil {
		return err
	}
	st, h, err := decodeState(r.state)
	if err != nil {
		return err
	}
	change(st)
	return writeBytes(s, r, encodeAsIs(st, h.through, h.swept))
}

// writeBytes stores r with the encoding b, in parts as a snapshot
// streamed is, under a MAC that verifies.
func writeBytes(s *Service, r *storedSnapshot, b []byte) error {
	return writeSnapshot(context.Background(), s.cfg.DB, dialectOf(s.cfg.Store), s.cfg.DigestKey, r,
		func(put func([]byte) error) ([]byte, error) {
			w := streamWriter(newSnapOut(put))
			w.b = append(w.b, b...)
			w.grew()
			return w.finish()
		})
}

// SetSnapshotPartSize sets the most bytes a stored part of a snapshot
// holds, until the returned function restores it.
func SetSnapshotPartSize(n int) (restore func()) {
	old := partSize
	partSize = n
	return func() { partSize = old }
}

// SnapshotParts returns how many parts the stored snapshot of s is in.
func SnapshotParts(s *Service) (int, error) {
	var n int
	err := s.cfg.DB.QueryRowContext(context.Background(), `SELECT count(*) FROM task_snapshot_part`).Scan(&n)
	return n, err
}

// StreamSnapshot encodes st as a snapshot as of through, forgetting as of
// swept, a part at a time, and returns the parts and the SHA-256 of their
// bytes.
func StreamSnapshot(st *State, through uint64, swept time.Time) (parts [][]byte, sum []byte, err error) {
	st.forgetActions(swept)
	sum, _, err = streamState(st, through, swept, func(p []byte) error {
		parts = append(parts, bytes.Clone(p))
		return nil
	})
	return parts, sum, err
}

// SetTaskState sets the state of a task in st.
func SetTaskState(st *State, taskID string, to Status) { st.tasks[taskID].State = to }

// StoreSnapshot offers the store a snapshot row of s covering through,
// as a replica that is behind would.
func StoreSnapshot(s *Service, through uint64) error {
	ctx := context.Background()
	size, err := s.cfg.Store.Size(ctx)
	if err != nil {
		return err
	}
	r := &storedSnapshot{version: snapshotVersion, through: through, size: size, leafHash: []byte{0}}
	return writeBytes(s, r, []byte("behind"))
}

// SetDetailsKept sets how many actions' details a state made afterwards
// keeps, until the returned function restores it.
// SetFlightWindow sets flightWindow (spill.go) until restore.
func SetFlightWindow(n uint64) (restore func()) {
	old := flightWindow
	flightWindow = n
	return func() { flightWindow = old }
}

// CallsPastWindow returns how many calls in flight the state of s keeps
// only as a count, and how many of them are task taskID's.
func CallsPastWindow(s *Service, taskID string) (all, ofTask int) {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.st.spilledN, s.st.spilled[taskID]
}

// PastWindow returns how many calls in flight of task taskID st keeps as a
// count only.
func PastWindow(st *State, taskID string) int { return st.spilled[taskID] }

// SetMaxAuthorized sets the highest index st has seen authorized.
func SetMaxAuthorized(st *State, n uint64) { st.maxAuthorized = n }

// AllPastWindow returns how many calls in flight st keeps as a count only.
func AllPastWindow(st *State) int { return st.spilledN }

func SetDetailsKept(n int) (restore func()) {
	old := detailsKept
	detailsKept = n
	return func() { detailsKept = old }
}

// StoredSnapshot returns the stored snapshot's index, the time it forgot
// as of, and its state's bytes.
func StoredSnapshot(s *Service) (through uint64, swept time.Time, state []byte, err error) {
	r, err := readSnapshot(context.Background(), s.cfg.DB, dialectOf(s.cfg.Store))
	if err != nil || r == nil {
		return 0, time.Time{}, nil, fmt.Errorf("no snapshot: %v", err)
	}
	_, h, err := decodeState(r.state)
	return r.through, h.swept, r.state, err
}

// EncodeServiceState encodes the state of s as a snapshot as of through
// would, forgetting as of swept, under the state's lock.
func EncodeServiceState(s *Service, through uint64, swept time.Time) []byte {
	s.smu.Lock()
	defer s.smu.Unlock()
	return encodeState(s.st, through, swept)
}

// HistoryHeld reports whether the state holds task id's history, and
// whether that history holds its window of recent calls.
func HistoryHeld(s *Service, id string) (history, window bool) {
	s.smu.Lock()
	defer s.smu.Unlock()
	h := s.st.history[id]
	return h != nil, h != nil && h.win != nil
}
