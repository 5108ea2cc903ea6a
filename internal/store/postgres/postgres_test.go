package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/leafenc"
	"github.com/writhq/writ/internal/store/postgres"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
	"github.com/writhq/writ/internal/store/storetest"
	"github.com/writhq/writ/internal/testkit"
)

// openStore opens the store on dsn and closes it when the test ends.
func openStore(t testing.TB, dsn string, opts postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func opener(t *testing.T) func(*testing.T) ledger.Store {
	dsn := pgtest.DSN(t)
	return func(t *testing.T) ledger.Store { return openStore(t, dsn, postgres.Options{}) }
}

func TestStore(t *testing.T)       { storetest.Run(t, opener) }
func TestSharedStore(t *testing.T) { storetest.RunShared(t, opener) }

// Replicas starting at once on an empty schema apply each migration once.
func TestConcurrentMigrations(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(ctx, dsn, postgres.Options{})
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows, heads int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM writ_schema`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM log_head`).Scan(&heads); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || heads != 1 {
		t.Errorf("writ_schema has %d rows and log_head %d, want 1 and 1", rows, heads)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	openStore(t, dsn, postgres.Options{}).Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE writ_schema SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	if s, err := postgres.Open(ctx, dsn, postgres.Options{}); err == nil {
		s.Close()
		t.Fatal("opened a database with a newer schema")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q does not say the schema is newer", err)
	}
}

func TestBadDSNDoesNotEchoIt(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://writ:s3cret-pw@127.0.0.1:1/x?sslmode=disable&connect_timeout=1", postgres.Options{})
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error %q carries the password", err)
	}
	_, err = postgres.Open(context.Background(), "postgres://writ:s3cret-pw@[::1", postgres.Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("a malformed DSN: %v", err)
	}
}

// A claim excludes other stores' claims and this store's own, and many
// claims share one connection.
func TestClaims(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	a, b := openStore(t, dsn, postgres.Options{MaxConns: 4}), openStore(t, dsn, postgres.Options{MaxConns: 4})
	for _, other := range []*postgres.Store{a, b} {
		unlock, err := a.Claim(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		if _, err := other.Claim(short, "x"); err == nil {
			t.Error("a claimed name was claimed again")
		}
		cancel()
		got := make(chan error, 1)
		go func() {
			u, err := other.Claim(ctx, "x")
			if err == nil {
				u()
			}
			got <- err
		}()
		unlock()
		if err := <-got; err != nil {
			t.Errorf("claim after release: %v", err)
		}
	}
	// More claims at once than the pool has connections.
	var unlocks []func()
	for i := range 20 {
		u, err := a.Claim(ctx, fmt.Sprintf("many-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		unlocks = append(unlocks, u)
	}
	if _, err := a.Size(ctx); err != nil {
		t.Errorf("the store is starved of connections by its claims: %v", err)
	}
	for _, u := range unlocks {
		u()
	}
}

// TestBodiesCompressed: a policy input is kept compressed, a short body as
// it is.
func TestBodiesCompressed(t *testing.T) {
	s := openStore(t, pgtest.DSN(t), postgres.Options{})
	storetest.BodiesCompressed(t, s, s.DB())
}

// A batch stamped at the wrong start aborts the whole transaction, even
// though its COMMIT travels with it.
func TestSequenceWrongStartWritesNothing(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	s := openStore(t, dsn, postgres.Options{})
	err := s.Sequence(ctx, 0, func(ctx context.Context, r ledger.LockedReader) (*ledger.Batch, error) {
		n, err := r.Size(ctx)
		if err != nil || n != 0 {
			t.Errorf("size under the lock %d, %v", n, err)
		}
		return &ledger.Batch{Start: 3, Leaves: [][]byte{[]byte("x")},
			Checkpoint: &ledger.StoredCheckpoint{Size: 4, Note: []byte("cp")}}, nil
	})
	if !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("Sequence with a wrong start: %v, want ErrConflict", err)
	}
	if n, err := s.Size(ctx); n != 0 || err != nil {
		t.Errorf("size %d (%v) after a refused batch", n, err)
	}
	if _, err := s.LatestCheckpoint(ctx); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("a refused batch's checkpoint was stored: %v", err)
	}
	// The connection went back to the pool usable.
	for range 20 {
		if _, err := s.Size(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sequence(ctx, 0, func(ctx context.Context, r ledger.LockedReader) (*ledger.Batch, error) {
		return &ledger.Batch{Start: 0, Leaves: [][]byte{[]byte("y")}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Size(ctx); n != 1 {
		t.Errorf("size %d, want 1", n)
	}
}

func TestWaited(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	s := openStore(t, dsn, postgres.Options{})
	unlock, err := s.Lock(ctx, "gate", true)
	if err != nil {
		t.Fatal(err)
	}
	if w, err := s.Waited(ctx, "gate"); err != nil || w {
		t.Fatalf("Waited with no waiter = %v, %v", w, err)
	}
	got := make(chan func(), 1)
	go func() {
		u, err := s.Lock(ctx, "gate", false)
		if err != nil {
			t.Error(err)
		}
		got <- u
	}()
	testkit.Eventually(t, 10*time.Second, func() error {
		w, err := s.Waited(ctx, "gate")
		if err != nil {
			t.Fatal(err)
		}
		if !w {
			return errors.New("Waited does not see the session waiting for the lock")
		}
		return nil
	})
	unlock()
	(<-got)()
	if w, err := s.Waited(ctx, "other"); err != nil || w {
		t.Errorf("Waited on another name = %v, %v", w, err)
	}
}

// A snapshot keeps showing the ledger as it was while a writer appends,
// and verifies.
func TestSnapshotIsStable(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	s := openStore(t, dsn, postgres.Options{})
	kp := storetest.NewKey(t, "snap.example/log")
	l, err := ledger.New(ctx, ledger.Config{Store: s, Signer: kp})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	appendN := func(n int) {
		for i := range n {
			if _, err := l.Append(ctx, ledger.Event{Type: "import.test", Data: []byte(fmt.Sprintf(`{"n":%d}`, i)),
				Bodies: map[string][]byte{"note": []byte("x")}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// More than one of Verify's parse chunks, so that it reads tiles
	// while it scans leaves.
	appendN(1300)
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	before, _ := snap.Size(ctx)
	appendN(300)
	if n, _ := snap.Size(ctx); n != before {
		t.Errorf("the snapshot's size moved from %d to %d", before, n)
	}
	leaves := 0
	if err := snap.ScanLeaves(ctx, 0, func(uint64, []byte) error { leaves++; return nil }); err != nil {
		t.Fatal(err)
	}
	if uint64(leaves) != before {
		t.Errorf("the snapshot scans %d leaves, its size is %d", leaves, before)
	}
	rep, err := ledger.Verify(ctx, snap, kp.Verifier(), "")
	if err != nil || !rep.OK() {
		t.Fatalf("verifying the snapshot: %v %+v", err, rep.Failures)
	}
	if err := snap.Commit(ctx, &ledger.Batch{Start: before}); err == nil {
		t.Error("a snapshot took a commit")
	}
}

// Ledgers sharing the store keep one checkpoint interval between them: three
// appending at once store about as many checkpoints as one would, not
// three times as many.
func TestReplicasShareTheCheckpointInterval(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	kp := storetest.NewKey(t, "interval.example/log")
	const interval = 40 * time.Millisecond
	var ledgers []*ledger.Ledger
	var stores []*postgres.Store
	for range 3 {
		s := openStore(t, dsn, postgres.Options{})
		l, err := ledger.New(ctx, ledger.Config{Store: s, Signer: kp, CheckpointInterval: interval})
		if err != nil {
			t.Fatal(err)
		}
		ledgers, stores = append(ledgers, l), append(stores, s)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, l := range ledgers {
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Since(start) < time.Second; i++ {
					if _, err := l.Append(ctx, ledger.Event{Type: "import.test", Data: []byte(fmt.Sprintf(`{"g":%d,"i":%d}`, g, i))}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, l := range ledgers {
		l.Close(ctx)
	}
	n := 0
	if err := stores[0].ScanCheckpoints(ctx, func(ledger.StoredCheckpoint) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	// One per interval, plus each ledger's first and last; three ledgers
	// each on its own interval would store three times as many.
	limit := int(2*elapsed/interval) + 6
	if n > limit {
		t.Errorf("%d checkpoints in %s at a %s interval (at most %d expected)", n, elapsed.Round(time.Millisecond), interval, limit)
	}
	rep, err := ledger.Verify(ctx, stores[0], kp.Verifier(), "")
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep.Failures)
	}
	t.Logf("%d events, %d checkpoints in %s", rep.Size, n, elapsed.Round(time.Millisecond))
}

// TestClaimProof: a DPoP proof's key is claimed once across every store on
// the database until it expires; an expired claim is taken over.
func TestClaimProof(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	var stores []*postgres.Store
	for range 2 {
		stores = append(stores, openStore(t, dsn, postgres.Options{}))
	}
	key := []byte("proof-key-0123456789abcdef012345")
	if fresh, err := stores[0].ClaimProof(ctx, key, time.Now().Add(time.Minute)); err != nil || !fresh {
		t.Fatalf("first claim: %v %v", fresh, err)
	}
	for i, s := range stores {
		if fresh, err := s.ClaimProof(ctx, key, time.Now().Add(time.Minute)); err != nil || fresh {
			t.Errorf("store %d: a replay claimed as fresh (%v, %v)", i, fresh, err)
		}
	}
	old := []byte("proof-key-expired-56789abcdef012")
	if fresh, err := stores[0].ClaimProof(ctx, old, time.Now().Add(-time.Second)); err != nil || !fresh {
		t.Fatalf("claim of an already expired key: %v %v", fresh, err)
	}
	if fresh, err := stores[1].ClaimProof(ctx, old, time.Now().Add(time.Minute)); err != nil || !fresh {
		t.Errorf("an expired claim was not taken over: %v %v", fresh, err)
	}
}

// TestScansPage: the store's and a snapshot's scans read page after page
// and see every leaf, body and checkpoint once, in order, across page
// boundaries (pages of 3 rows here), and a snapshot's callbacks may read
// the snapshot.
func TestScansPage(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	postgres.SmallPages(t, 3)
	s := openStore(t, dsn, postgres.Options{})
	kp := storetest.NewKey(t, "pages.example/log")
	l, err := ledger.New(ctx, ledger.Config{Store: s, Signer: kp})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	const events = 20
	for i := range events {
		// Two bodies each (names in both orders), a checkpoint each.
		if _, err := l.Append(ctx, ledger.Event{Type: "import.test", Data: []byte(fmt.Sprintf(`{"n":%d}`, i)),
			Bodies: map[string][]byte{"b": []byte("x"), "a": []byte("y")}}); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	for name, st := range map[string]ledger.Store{"store": s, "snapshot": snap} {
		var leaves []uint64
		if err := st.ScanLeaves(ctx, 2, func(i uint64, _ []byte) error {
			leaves = append(leaves, i)
			_, err := st.ReadLeaves(ctx, i, i+1) // a callback reads too
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(leaves) != events-2 || leaves[0] != 2 || leaves[len(leaves)-1] != events-1 {
			t.Errorf("%s: leaves from 2: %v", name, leaves)
		}
		var bodies []string
		if err := st.ScanBodies(ctx, func(b ledger.Body) error {
			bodies = append(bodies, fmt.Sprintf("%d%s", b.Index, b.Name))
			_, err := st.ReadBody(ctx, ledger.BodyRef{Index: b.Index, Name: b.Name})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(bodies) != 2*events || bodies[0] != "0a" || bodies[1] != "0b" || bodies[2*events-1] != fmt.Sprintf("%db", events-1) {
			t.Errorf("%s: bodies %v", name, bodies)
		}
		var sizes []uint64
		if err := st.ScanCheckpoints(ctx, func(cp ledger.StoredCheckpoint) error {
			sizes = append(sizes, cp.Size)
			_, err := st.LatestCheckpoint(ctx)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for k := 1; k < len(sizes); k++ {
			if sizes[k] <= sizes[k-1] {
				t.Errorf("%s: checkpoint sizes out of order: %v", name, sizes)
				break
			}
		}
		if len(sizes) < 4 || sizes[len(sizes)-1] != events {
			t.Errorf("%s: checkpoint sizes %v: want more than a page, the last of size %d", name, sizes, events)
		}
	}
	if rep, err := ledger.Verify(ctx, snap, kp.Verifier(), ""); err != nil || !rep.OK() {
		t.Fatalf("verifying through small pages: %v %+v", err, rep.Failures)
	}
}

// The head's lock returns the leaves appended since the size the writer
// knows, for its task chains; the reader serves them, and reads others.
func TestLockReturnsNewLeaves(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	s := openStore(t, dsn, postgres.Options{})
	if err := s.Commit(ctx, storetest.Batch(0, 5)); err != nil {
		t.Fatal(err)
	}
	want, err := s.ReadLeaves(ctx, 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, known := range []uint64{2, 5, ^uint64(0)} {
		err := s.Sequence(ctx, known, func(ctx context.Context, r ledger.LockedReader) (*ledger.Batch, error) {
			from, n := postgres.HeldLeaves(r)
			if wantN := 5 - int(min(known, 5)); n != wantN || n > 0 && from != known {
				t.Errorf("known %d: the lock returned %d leaves from %d, want %d from %d", known, n, from, wantN, known)
			}
			for _, span := range [][2]uint64{{2, 5}, {3, 4}, {0, 5}, {1, 3}} {
				got, err := r.ReadLeaves(ctx, span[0], span[1])
				if err != nil {
					return nil, err
				}
				if !slices.EqualFunc(got, want[span[0]:span[1]], bytes.Equal) {
					t.Errorf("known %d: leaves %v = %q", known, span, got)
				}
			}
			return nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestLockLost: a lock whose session ends (its backend terminated, as a
// restart or a dropped connection would) tells its holder, and another
// process takes it; releasing the lost lock then leaves the other's alone.
// A lock released ends its held context too, saying so.
func TestLockLost(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	a, b := openStore(t, dsn, postgres.Options{}), openStore(t, dsn, postgres.Options{})
	held, unlock, ok, err := a.TryLock(ctx, "sink/x")
	if err != nil || !ok {
		t.Fatalf("taking a free lock: %v, %v", ok, err)
	}
	t.Cleanup(unlock) // before the store closes, which waits for its connections
	if _, _, ok, err := b.TryLock(ctx, "sink/x"); err != nil || ok {
		t.Fatalf("taking a held lock: %v, %v", ok, err)
	}
	pgtest.TerminateLockHolder(t, dsn, a.LockKey("sink/x"))
	select {
	case <-held.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the holder of a lock whose session ended was not told")
	}
	if cause := context.Cause(held); errors.Is(cause, postgres.ErrLockReleased) || errors.Is(cause, context.Canceled) {
		t.Fatalf("a lost lock's cause: %v", cause)
	}
	var heldB context.Context
	var unlockB func()
	testkit.Eventually(t, 30*time.Second, func() error {
		h, u, ok, err := b.TryLock(ctx, "sink/x")
		if err != nil || !ok {
			return fmt.Errorf("taking the lost lock: %v, %v", ok, err)
		}
		heldB, unlockB = h, u
		t.Cleanup(u)
		return nil
	})
	unlock()
	if _, _, ok, err := a.TryLock(ctx, "sink/x"); err != nil || ok {
		t.Fatalf("taking the lock another took over: %v, %v", ok, err)
	}
	if heldB.Err() != nil {
		t.Fatalf("the new holder's lock ended: %v", context.Cause(heldB))
	}
	unlockB()
	if cause := context.Cause(heldB); !errors.Is(cause, postgres.ErrLockReleased) {
		t.Fatalf("a released lock's cause: %v", cause)
	}
	heldA, unlockA, ok, err := a.TryLock(ctx, "sink/x")
	if err != nil || !ok {
		t.Fatalf("taking the released lock: %v, %v", ok, err)
	}
	unlockA()
	<-heldA.Done()
}

// TestLeavesCompressed: past the first span, the leaves are kept
// compressed against their span's dictionary and the policy inputs against
// the span's leaves, as on SQLite, by two writers taking turns on one log:
// each reads the other's leaves, compressed, back under the head's lock to
// link its task's chain (the calls are all of one task). The log verifies
// through a new handle.
func TestLeavesCompressed(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	kp := storetest.NewKey(t, "spans.example/log")
	appendTurns(t, dsn, kp, 0, leafenc.SpanSize+650)
	s := openStore(t, dsn, postgres.Options{})
	storetest.LeavesCompressed(t, s.DB())
	storetest.Verify(t, s, kp)
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	storetest.Verify(t, snap, kp)
}

// TestLeavesMigration: leaves written before leaves named their encoding
// read back as they are, also through the head's lock, and new ones
// append after them.
func TestLeavesMigration(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	s := openStore(t, dsn, postgres.Options{})
	if err := s.Commit(ctx, storetest.Batch(0, 3)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Back to schema 9: the tiles whole again and the column gone
	// (writ_lock_head is replaced by migrations 10 and 11 as they stand).
	downgrade := append(tilesBefore11(), `ALTER TABLE leaves DROP COLUMN enc`, `UPDATE writ_schema SET version = 9`)
	for _, q := range downgrade {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s = openStore(t, dsn, postgres.Options{})
	err = s.Sequence(ctx, 0, func(ctx context.Context, r ledger.LockedReader) (*ledger.Batch, error) {
		got, err := r.ReadLeaves(ctx, 0, 3)
		if err != nil || len(got) != 3 || string(got[2]) != `{"n":2}` {
			t.Errorf("under the lock, leaves %q, %v", got, err)
		}
		return storetest.Batch(3, 2), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	storetest.HoldsBatches(t, s, 5)
}

// appendTurns appends storetest.CallEvent(from) to (to-1) through two
// ledgers on the database, taking turns 37 events at a time, so that each
// reloads under the head's lock what the other appended.
func appendTurns(t *testing.T, dsn string, kp *ledger.KeyPair, from, to int) {
	t.Helper()
	ctx := context.Background()
	var ledgers []*ledger.Ledger
	for range 2 {
		l, err := ledger.New(ctx, ledger.Config{Store: openStore(t, dsn, postgres.Options{}), Signer: kp})
		if err != nil {
			t.Fatal(err)
		}
		ledgers = append(ledgers, l)
	}
	for i := from; i < to; i++ {
		if _, err := ledgers[i/37%2].Append(ctx, storetest.CallEvent(i)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	for _, l := range ledgers {
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// tilesBefore11 are the statements that put the tiles back as schema 10
// kept them: each partial tile whole in tiles.
func tilesBefore11() []string {
	return []string{
		`INSERT INTO tiles (level, idx, hashes) SELECT level, idx, string_agg(hashes, ''::bytea ORDER BY pos) FROM tile_parts GROUP BY level, idx`,
		`DROP TABLE tile_parts`,
	}
}

// TestTilesKeptInParts: full tiles are rows of their own and a partial
// tile the runs of hashes its commits added, through two writers taking
// turns (each reloading the edge under the head's lock); a log whose
// partial tiles were kept whole (schema 10) is moved to runs by the
// migration and grows from there; and a run missing from a partial tile
// is an error when it is read, never a shorter tile.
func TestTilesKeptInParts(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	kp := storetest.NewKey(t, "tiles.example/log")
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	layout := func(wantParts bool) {
		t.Helper()
		var partial, runs int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM tiles WHERE length(hashes) <> 8192`).Scan(&partial); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM tile_parts`).Scan(&runs); err != nil {
			t.Fatal(err)
		}
		if partial != 0 || (runs > 0) != wantParts {
			t.Errorf("%d partial tiles in tiles, %d runs in tile_parts", partial, runs)
		}
	}

	appendTurns(t, dsn, kp, 0, 600) // two full tiles at level 0, a partial one, and a partial one at level 1
	layout(true)
	storetest.Verify(t, openStore(t, dsn, postgres.Options{}), kp)

	for _, q := range append(tilesBefore11(), `UPDATE writ_schema SET version = 10`) {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	appendTurns(t, dsn, kp, 600, 900) // the migration runs as the first store opens
	layout(true)
	s := openStore(t, dsn, postgres.Options{})
	storetest.Verify(t, s, kp)

	// The level-0 tile at the edge, with a run taken out of its middle.
	edge := ledger.TileID{Level: 0, Index: 900 / ledger.TileWidth}
	whole, err := s.ReadTile(ctx, edge)
	if err != nil || len(whole) != 900%ledger.TileWidth*ledger.HashSize {
		t.Fatalf("edge tile: %d bytes, %v", len(whole), err)
	}
	tag, err := conn.Exec(ctx, `DELETE FROM tile_parts WHERE level = 0 AND idx = $1 AND pos = (SELECT min(pos) FROM tile_parts WHERE level = 0 AND idx = $1 AND pos > 0)`, int64(edge.Index))
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("taking a run out: %v %v", tag, err)
	}
	if b, err := s.ReadTile(ctx, edge); err == nil {
		t.Errorf("a tile with a run missing read as %d bytes", len(b))
	}
}
