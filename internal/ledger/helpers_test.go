package ledger_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/sqlite"
)

// testEvent is an import event carrying n in its data and, when withBody is
// set, a "note" body (and an "args" body for every third n).
func testEvent(n int, withBody bool) ledger.Event {
	e := ledger.Event{Type: "import.test", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
	if withBody {
		e.Bodies = map[string][]byte{"note": []byte(fmt.Sprintf("note for event %d", n))}
		if n%3 == 0 {
			e.Bodies["args"] = []byte(fmt.Sprintf(`{"arg":%d}`, n))
		}
	}
	return e
}

// openDir opens (creating) a writable data directory and a ledger on it. The
// ledger and the directory are closed when the test ends unless the caller
// closes them first (closing twice is harmless).
func openDir(t testing.TB, path string, tweak func(*ledger.Config)) (*datadir.Dir, *ledger.Ledger) {
	t.Helper()
	ctx := context.Background()
	d, err := datadir.Open(ctx, path, datadir.Options{Write: true, Origin: "test.writ.example/ledger"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ledger.Config{Store: d.Store, Signer: d.Signer}
	if tweak != nil {
		tweak(&cfg)
	}
	l, err := ledger.New(ctx, cfg)
	if err != nil {
		d.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close(context.Background())
		d.Close()
	})
	return d, l
}

// closeAll closes the ledger (signing its final checkpoint) and the directory.
func closeAll(t testing.TB, d *datadir.Dir, l *ledger.Ledger) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatalf("closing ledger: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("closing data directory: %v", err)
	}
}

// appendMany appends events first..first+count-1 from workers goroutines and
// returns the index each n was given.
func appendMany(t testing.TB, l *ledger.Ledger, first, count, workers int, withBody bool) map[int]uint64 {
	t.Helper()
	ctx := context.Background()
	var (
		mu   sync.Mutex
		got  = make(map[int]uint64, count)
		wg   sync.WaitGroup
		work = make(chan int)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				idx, err := l.Append(ctx, testEvent(n, withBody))
				if err != nil {
					t.Errorf("append %d: %v", n, err)
					continue
				}
				mu.Lock()
				got[n] = idx
				mu.Unlock()
			}
		}()
	}
	for n := first; n < first+count; n++ {
		work <- n
	}
	close(work)
	wg.Wait()
	return got
}

// verifyStore runs a full verification against vkey.
func verifyStore(t testing.TB, st ledger.Store, vkey string) *ledger.Report {
	t.Helper()
	v, err := ledger.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := ledger.Verify(context.Background(), st, v, vkey)
	if err != nil {
		t.Fatalf("verify could not read the store: %v", err)
	}
	return rep
}

// mustVerifyOK fails the test unless verification finds nothing wrong.
func mustVerifyOK(t testing.TB, st ledger.Store, vkey string) *ledger.Report {
	t.Helper()
	rep := verifyStore(t, st, vkey)
	if !rep.OK() {
		t.Fatalf("verification failed: %v (and %d more)", rep.Failures, rep.Truncated)
	}
	return rep
}

// eventN returns data.n of a stored leaf.
func eventN(t testing.TB, index uint64, leaf []byte) int {
	t.Helper()
	e, err := ledger.ParseLeaf(index, leaf)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		N *int `json:"n"`
	}
	if err := json.Unmarshal(e.Event.Data, &d); err != nil || d.N == nil {
		t.Fatalf("event %d: data %s has no n", index, e.Event.Data)
	}
	return *d.N
}

// readAllLeaves returns every stored leaf in index order.
func readAllLeaves(t testing.TB, st ledger.Store) [][]byte {
	t.Helper()
	n, err := st.Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := st.ReadLeaves(context.Background(), 0, n)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(leaves)) != n {
		t.Fatalf("store says size %d but returned %d leaves", n, len(leaves))
	}
	return leaves
}

// treeRoot recomputes the RFC 6962 root of leaves independently of the
// ledger's incremental tree.
func treeRoot(t testing.TB, leaves [][]byte) []byte {
	t.Helper()
	if len(leaves) == 0 {
		return rfc6962.DefaultHasher.EmptyRoot()
	}
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for _, l := range leaves {
		if err := r.Append(rfc6962.DefaultHasher.HashLeaf(l), nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// latestCheckpoint opens the store's latest checkpoint with vkey.
func latestCheckpoint(t testing.TB, st ledger.Store, vkey string) ledger.Checkpoint {
	t.Helper()
	v, err := ledger.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := st.LatestCheckpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cp, err := ledger.OpenCheckpoint(sc.Note, v.Name(), v)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != sc.Size {
		t.Fatalf("checkpoint stored for size %d says %d", sc.Size, cp.Size)
	}
	return cp
}

// findFailure returns the first failure with the check and index (any index
// when index is anyIndex).
func findFailure(rep *ledger.Report, check string, index int64) (ledger.Failure, bool) {
	for _, f := range rep.Failures {
		if f.Check == check && (index == anyIndex || f.Index == index) {
			return f, true
		}
	}
	return ledger.Failure{}, false
}

const anyIndex = -2

// copyDataDir copies the files of a closed data directory (store, WAL if
// any, key) to a fresh directory.
func copyDataDir(t testing.TB, from string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{sqlite.FileName, sqlite.FileName + "-wal", sqlite.FileName + "-shm", ledger.KeyFile} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// openReadOnly opens a data directory for reading, as 'writ ledger verify'
// does.
func openReadOnly(t testing.TB, path string) *datadir.Dir {
	t.Helper()
	d, err := datadir.Open(context.Background(), path, datadir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// datadirOpenWrite opens an existing data directory for writing, as a server
// start does.
func datadirOpenWrite(ctx context.Context, path string) (*datadir.Dir, error) {
	return datadir.Open(ctx, path, datadir.Options{Write: true})
}
