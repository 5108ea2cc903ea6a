package ledger_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/writhq/writ/internal/ledger"
)

// TestOnCommitHashes: the hashes OnCommit hands over are those of the
// leaves as stored, SHA-256(0x00 || leaf), for events of no task and for
// task events whose links were stamped in the batch, with several callers'
// requests in one batch. A follower handed them gives each entry its own
// leaf's hash.
func TestOnCommitHashes(t *testing.T) {
	ctx := context.Background()
	type commit struct {
		first          uint64
		leaves, hashes [][]byte
	}
	var mu sync.Mutex
	var commits []commit
	plain := 0
	var fol *ledger.Follower
	d, l := openDir(t, t.TempDir(), func(c *ledger.Config) {
		c.OnCommit = func(first uint64, events []ledger.Event, leaves, hashes [][]byte) {
			mu.Lock()
			defer mu.Unlock()
			plain += len(events)
			commits = append(commits, commit{first, leaves, hashes})
			if fol != nil {
				fol.Committed(first, events, leaves, hashes)
			}
		}
	})
	rec := &recorder{}
	f, err := ledger.NewFollower(ledger.FollowerConfig{Store: d.Store, Leaves: true, Consumer: rec})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	fol = f
	mu.Unlock()
	const callers, each = 8, 25
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range each {
				evs := []ledger.Event{
					{Type: "import.test", TaskID: fmt.Sprintf("tsk_%d", c%3), Data: []byte(fmt.Sprintf(`{"c":%d,"i":%d}`, c, i))},
					{Type: "import.test", Data: []byte(fmt.Sprintf(`{"c":%d,"i":%d,"plain":true}`, c, i))},
				}
				if _, err := l.AppendAll(ctx, evs); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	size, err := d.Store.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := d.Store.ReadLeaves(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range commits {
		if len(c.hashes) != len(c.leaves) {
			t.Fatalf("commit at %d: %d hashes for %d leaves", c.first, len(c.hashes), len(c.leaves))
		}
		for i, h := range c.hashes {
			idx := c.first + uint64(i)
			if !bytes.Equal(h, ledger.LeafHash(stored[idx])) {
				t.Fatalf("entry %d: handed hash %x, the stored leaf's is %x", idx, h, ledger.LeafHash(stored[idx]))
			}
			n++
		}
	}
	if n != callers*each*2 || plain != n {
		t.Fatalf("%d hashes handed and %d events to OnCommit, for %d events", n, plain, callers*each*2)
	}
	if err := f.SyncTo(ctx, size); err != nil {
		t.Fatal(err)
	}
	withHash := 0
	for _, e := range rec.entries() {
		if e.Hash == nil {
			continue
		}
		withHash++
		if !bytes.Equal(e.Hash, ledger.LeafHash(stored[e.Index])) || !bytes.Equal(e.Leaf, stored[e.Index]) {
			t.Fatalf("the follower handed entry %d with another entry's leaf or hash", e.Index)
		}
	}
	if withHash == 0 {
		t.Fatal("the follower handed no entry with its hash")
	}
}
