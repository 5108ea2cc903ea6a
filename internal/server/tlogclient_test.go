package server_test

// These tests read writ's ledger the way an outside auditor would: with the
// Tessera tlog-tiles client and the note verifier served at /ledger/key,
// trusting nothing of writ's own verification code.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/testkit"
)

// appendMany appends n events concurrently over HTTP, each with a distinct
// task ID, and returns the task ID acknowledged at each index.
// past is the size a log must have to hold every acknowledged index: the
// ledger may have written events of its own among them.
func past(acked map[uint64]string) uint64 {
	var n uint64
	for idx := range acked {
		n = max(n, idx+1)
	}
	return n
}

func appendMany(t *testing.T, ts *testServer, prefix string, n int) map[uint64]string {
	t.Helper()
	const workers = 64
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer c.CloseIdleConnections()
	var (
		mu   sync.Mutex
		got  = make(map[uint64]string, n)
		errs []error
		wg   sync.WaitGroup
		next = make(chan int)
	)
	for range workers {
		wg.Go(func() {
			for i := range next {
				id := fmt.Sprintf("%s-%05d", prefix, i)
				e := api.Event{Type: "import.test.event", TaskID: id, Data: []byte(fmt.Sprintf(`{"n":%d}`, i))}
				if i%7 == 0 {
					e.Bodies = map[string]string{"output": "body of " + id}
				}
				idx, _, err := appendEvent(context.Background(), c, ts, e)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if prev, dup := got[idx]; dup {
					errs = append(errs, fmt.Errorf("index %d acknowledged twice (%s, %s)", idx, prev, id))
				} else {
					got[idx] = id
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d appends failed, first: %v", len(errs), n, errs[0])
	}
	return got
}

// tlogClient is an outside view of a writ ledger through the Tessera client.
type tlogClient struct {
	f        *client.HTTPFetcher
	verifier note.Verifier
	origin   string
}

func newTLogClient(t *testing.T, ts *testServer) *tlogClient {
	t.Helper()
	a := ts.get(t, "/ledger/key")
	if a.status != http.StatusOK {
		t.Fatalf("GET /ledger/key = %d %s", a.status, a.body)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(a.body)))
	if err != nil {
		t.Fatalf("/ledger/key %q is not a note verifier key: %v", a.body, err)
	}
	root, err := url.Parse(ts.url + "/ledger/")
	if err != nil {
		t.Fatal(err)
	}
	f, err := client.NewHTTPFetcher(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.SetAuthorizationHeader("Bearer " + ts.token)
	return &tlogClient{f: f, verifier: v, origin: v.Name()}
}

// checkpoint fetches and opens the latest checkpoint.
func (c *tlogClient) checkpoint(t *testing.T) (*log.Checkpoint, []byte) {
	t.Helper()
	cp, raw, _, err := client.FetchCheckpoint(context.Background(), c.f.ReadCheckpoint, c.verifier, c.origin)
	if err != nil {
		t.Fatalf("FetchCheckpoint: %v", err)
	}
	return cp, raw
}

// checkpointAtLeast polls until the checkpoint covers size entries: the
// server signs checkpoints a few milliseconds behind the appends.
func (c *tlogClient) checkpointAtLeast(t *testing.T, size uint64) (*log.Checkpoint, []byte) {
	t.Helper()
	var cp *log.Checkpoint
	var raw []byte
	testkit.Eventually(t, 10*time.Second, func() error {
		cp, raw = c.checkpoint(t)
		if cp.Size < size {
			return fmt.Errorf("checkpoint still at size %d, want at least %d", cp.Size, size)
		}
		return nil
	})
	return cp, raw
}

// leaves fetches every entry of a tree of the given size through the
// client's entry-bundle fetcher, following the tlog-tiles layout.
func (c *tlogClient) leaves(t *testing.T, size uint64) [][]byte {
	t.Helper()
	var out [][]byte
	for i := uint64(0); i*layout.EntryBundleWidth < size; i++ {
		b, err := client.GetEntryBundle(context.Background(), c.f.ReadEntryBundle, i, size)
		if err != nil {
			t.Fatalf("GetEntryBundle(%d, size %d): %v", i, size, err)
		}
		want := min(size-i*layout.EntryBundleWidth, layout.EntryBundleWidth)
		if uint64(len(b.Entries)) != want {
			t.Fatalf("entry bundle %d holds %d entries, want %d", i, len(b.Entries), want)
		}
		out = append(out, b.Entries...)
	}
	return out
}

func TestTLogTilesClient(t *testing.T) {
	ts := startServer(t, "")
	ctx := context.Background()
	c := newTLogClient(t, ts)

	// 1,500 events: five full level-0 tiles and entry bundles, a partial
	// one, and a partial level-1 tile; proofs cross all of them.
	const n1 = 1500
	acked := appendMany(t, ts, "a", n1)
	cp1, raw1 := c.checkpointAtLeast(t, past(acked))
	if cp1.Origin != c.origin {
		t.Errorf("checkpoint origin %q, want %q", cp1.Origin, c.origin)
	}
	// The ledger may hold events it wrote itself before ours.
	if cp1.Size < n1 || cp1.Size > n1+8 {
		t.Fatalf("checkpoint size %d after %d appends", cp1.Size, n1)
	}

	leaves := c.leaves(t, cp1.Size)
	for idx, id := range acked {
		if idx >= uint64(len(leaves)) {
			t.Fatalf("acknowledged index %d is beyond the log (%d)", idx, len(leaves))
		}
		e, err := ledger.ParseLeaf(idx, leaves[idx])
		if err != nil {
			t.Fatalf("entry %d is not a writ event: %v", idx, err)
		}
		if e.Event.TaskID != id {
			t.Fatalf("entry %d holds task %q, but the append of %q was acknowledged at that index", idx, e.Event.TaskID, id)
		}
	}

	// Inclusion of a spread of entries, with leaf hashes computed here from
	// the fetched bundle contents.
	pb, err := client.NewProofBuilder(ctx, cp1.Size, c.f.ReadTile)
	if err != nil {
		t.Fatalf("NewProofBuilder: %v", err)
	}
	for _, idx := range spread(cp1.Size) {
		p, err := pb.InclusionProof(ctx, idx)
		if err != nil {
			t.Fatalf("InclusionProof(%d): %v", idx, err)
		}
		lh := rfc6962.DefaultHasher.HashLeaf(leaves[idx])
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, idx, cp1.Size, lh, p, cp1.Hash); err != nil {
			t.Errorf("inclusion of entry %d in checkpoint %d: %v", idx, cp1.Size, err)
		}
		// A different leaf must not verify with the same proof.
		other := rfc6962.DefaultHasher.HashLeaf(append(bytes.Clone(leaves[idx]), ' '))
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, idx, cp1.Size, other, p, cp1.Hash); err == nil {
			t.Errorf("a tampered entry %d verified", idx)
		}
	}
	// The root recomputed from all fetched entries is the checkpoint's.
	if got := merkleRoot(leaves); !bytes.Equal(got, cp1.Hash) {
		t.Errorf("root of the fetched entries %x, checkpoint says %x", got, cp1.Hash)
	}

	// Grow the log and prove the new checkpoint consistent with the old,
	// by hand and through the client's LogStateTracker.
	tracker, err := client.NewLogStateTracker(ctx, c.f.ReadTile, raw1, c.verifier, c.origin, client.UnilateralConsensus(c.f.ReadCheckpoint))
	if err != nil {
		t.Fatalf("NewLogStateTracker: %v", err)
	}
	if got := tracker.Latest().Size; got != cp1.Size {
		t.Fatalf("tracker starts at size %d, want %d", got, cp1.Size)
	}
	acked2 := appendMany(t, ts, "b", 300)
	cp2, _ := c.checkpointAtLeast(t, past(acked2))
	pb2, err := client.NewProofBuilder(ctx, cp2.Size, c.f.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	for _, small := range []uint64{1, 255, 256, 257, 1000, cp1.Size} {
		p, err := pb2.ConsistencyProof(ctx, small, cp2.Size)
		if err != nil {
			t.Fatalf("ConsistencyProof(%d, %d): %v", small, cp2.Size, err)
		}
		if small != cp1.Size {
			continue // no signed root at this size to check against; the builder must still work
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, cp1.Size, cp2.Size, p, cp1.Hash, cp2.Hash); err != nil {
			t.Errorf("consistency %d → %d: %v", cp1.Size, cp2.Size, err)
		}
	}
	_, _, newRaw, err := tracker.Update(ctx)
	if err != nil {
		t.Fatalf("LogStateTracker.Update: %v", err)
	}
	latest := tracker.Latest()
	if latest.Size < cp2.Size {
		t.Errorf("tracker at size %d after update, want at least %d", latest.Size, cp2.Size)
	}
	if _, _, _, err := log.ParseCheckpoint(newRaw, c.origin, c.verifier); err != nil {
		t.Errorf("tracker's new checkpoint does not open: %v", err)
	}
	for idx, id := range acked2 {
		if idx < cp1.Size {
			t.Errorf("second batch event %s got index %d, inside the first checkpoint", id, idx)
		}
	}
}

// spread picks indexes across a tree of size n: both ends, tile edges and
// a stride through the middle.
func spread(n uint64) []uint64 {
	seen := map[uint64]bool{}
	var out []uint64
	add := func(i uint64) {
		if i < n && !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	for _, i := range []uint64{0, 1, 254, 255, 256, 257, 511, 512, 1023, 1024, 1279, 1280, n - 2, n - 1} {
		add(i)
	}
	for i := uint64(3); i < n; i += 97 {
		add(i)
	}
	return out
}

// merkleRoot computes the RFC 6962 root of leaves, independently of the
// tiles the server serves.
func merkleRoot(leaves [][]byte) []byte {
	h := rfc6962.DefaultHasher
	if len(leaves) == 0 {
		return h.EmptyRoot()
	}
	if len(leaves) == 1 {
		return h.HashLeaf(leaves[0])
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return h.HashChildren(merkleRoot(leaves[:k]), merkleRoot(leaves[k:]))
}

func TestTilePathsAndCaching(t *testing.T) {
	ts := startServer(t, "")
	c := newTLogClient(t, ts)
	// Wait for the checkpoint over every leaf (the server logged some of
	// its own before these), so that the partial tile below is the log's
	// last.
	var size uint64
	for idx := range appendMany(t, ts, "c", 300) {
		size = max(size, idx+1)
	}
	cp, _ := c.checkpointAtLeast(t, size)
	if cp.Size >= 2*ledger.TileWidth {
		t.Fatalf("log grew to %d; the test wants a partial second tile", cp.Size)
	}
	partial := cp.Size - ledger.TileWidth

	tests := []struct {
		path       string
		wantStatus int
		wantLen    int    // for 200: bytes expected, -1 to skip
		wantCache  string // substring of Cache-Control for 200
	}{
		{"tile/0/000", 200, ledger.TileWidth * ledger.HashSize, "immutable"},
		{"tile/0/001.p/" + fmt.Sprint(partial), 200, int(partial) * ledger.HashSize, ""},
		{"tile/0/001.p/1", 200, ledger.HashSize, ""}, // a prefix of a partial tile stays servable
		{"tile/entries/000", 200, -1, "immutable"},
		{"tile/entries/001.p/" + fmt.Sprint(partial), 200, -1, ""},
		// Wider than what exists.
		{"tile/0/001.p/" + fmt.Sprint(partial+1), 404, 0, ""},
		{"tile/entries/001.p/255", 404, 0, ""},
		{"tile/0/001", 404, 0, ""},
		{"tile/0/002.p/1", 404, 0, ""},
		{"tile/1/000", 404, 0, ""},
		{"tile/entries/x001/000", 404, 0, ""},
		// Malformed.
		{"tile/0/1", 404, 0, ""},
		{"tile/0/0001", 404, 0, ""},
		{"tile/0/000.p/0", 404, 0, ""},
		{"tile/0/000.p/256", 404, 0, ""},
		{"tile/0/000.p/01", 404, 0, ""},
		{"tile/0/x000/001", 404, 0, ""},
		{"tile/0/001/002", 404, 0, ""},
		{"tile/00/000", 404, 0, ""},
		{"tile/-1/000", 404, 0, ""},
		{"tile/64/000", 404, 0, ""},
		{"tile/0/abc", 404, 0, ""},
		{"tile/0/", 404, 0, ""},
		{"tile/", 404, 0, ""},
		{"tile/entries/000.p/", 404, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			a := ts.get(t, "/ledger/"+tt.path)
			if a.status != tt.wantStatus {
				t.Fatalf("GET %s = %d %s, want %d", tt.path, a.status, a.body, tt.wantStatus)
			}
			if a.status != http.StatusOK {
				if e := apiError(t, a); e.Error != "not_found" {
					t.Errorf("error code %q, want not_found", e.Error)
				}
				return
			}
			if tt.wantLen >= 0 && len(a.body) != tt.wantLen {
				t.Errorf("body is %d bytes, want %d", len(a.body), tt.wantLen)
			}
			cc := a.header.Get("Cache-Control")
			if tt.wantCache != "" && !strings.Contains(cc, tt.wantCache) {
				t.Errorf("Cache-Control %q lacks %q", cc, tt.wantCache)
			}
			if tt.wantCache == "" && strings.Contains(cc, "immutable") {
				t.Errorf("partial tile served with Cache-Control %q", cc)
			}
		})
	}

	// The checkpoint must never be cached as immutable.
	a := ts.get(t, "/ledger/checkpoint")
	if cc := a.header.Get("Cache-Control"); strings.Contains(cc, "immutable") || strings.Contains(cc, "max-age=3") {
		t.Errorf("checkpoint Cache-Control %q", cc)
	}

	// The client's fallback from a partial to the full tile works once the
	// tile has filled.
	if _, err := c.f.ReadTile(context.Background(), 0, 0, 17); err != nil {
		t.Errorf("ReadTile(0, 0, p=17) on a full tile: %v", err)
	}
	_, err := c.f.ReadTile(context.Background(), 0, 5, 3)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadTile of a tile beyond the log: err = %v, want os.ErrNotExist", err)
	}
}

// TestTLogTilesClientFullLevel1 grows the log past 65,536 entries, so that a
// full level-1 tile and a level-2 tile exist, and checks proofs across them
// with the Tessera client. Events go straight to the server's ledger (the
// HTTP path is covered above) to keep the test fast.
func TestTLogTilesClientFullLevel1(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 66,000 events")
	}
	ts := startServer(t, "")
	ctx := context.Background()
	c := newTLogClient(t, ts)
	const half, n = 1<<16 - 7, 1<<16 + 464
	appendDirect(t, ts, 0, half)
	// A checkpoint from before the level-1 tile filled, to prove the final
	// one consistent with.
	cpA, _ := c.checkpointAtLeast(t, half)
	appendDirect(t, ts, half, n)
	cp, _ := c.checkpointAtLeast(t, n)

	// The full level-1 tile and the partial level-2 tile are served.
	for _, p := range []string{"tile/1/000", "tile/2/000.p/1", "tile/entries/256"} {
		if a := ts.get(t, "/ledger/"+p); a.status != http.StatusOK {
			t.Errorf("GET %s = %d %s", p, a.status, a.body)
		}
	}

	pb, err := client.NewProofBuilder(ctx, cp.Size, c.f.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	for _, idx := range []uint64{0, 255, 256, 65535, 65536, 65537, 40000, cp.Size - 1} {
		b, err := client.GetEntryBundle(ctx, c.f.ReadEntryBundle, idx/layout.EntryBundleWidth, cp.Size)
		if err != nil {
			t.Fatalf("GetEntryBundle for entry %d: %v", idx, err)
		}
		leaf := b.Entries[idx%layout.EntryBundleWidth]
		p, err := pb.InclusionProof(ctx, idx)
		if err != nil {
			t.Fatalf("InclusionProof(%d): %v", idx, err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, idx, cp.Size, rfc6962.DefaultHasher.HashLeaf(leaf), p, cp.Hash); err != nil {
			t.Errorf("inclusion of entry %d in checkpoint %d: %v", idx, cp.Size, err)
		}
	}
	// Consistency across the level-1 tile boundary, against signed roots.
	cproof, err := pb.ConsistencyProof(ctx, cpA.Size, cp.Size)
	if err != nil {
		t.Fatalf("ConsistencyProof(%d, %d): %v", cpA.Size, cp.Size, err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, cpA.Size, cp.Size, cproof, cpA.Hash, cp.Hash); err != nil {
		t.Errorf("consistency %d → %d: %v", cpA.Size, cp.Size, err)
	}
}

// appendDirect appends the events numbered [from, to) through the server's
// ledger, concurrently so that group commit batches them.
func appendDirect(t *testing.T, ts *testServer, from, to int) {
	t.Helper()
	const workers = 256
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for w := range workers {
		wg.Go(func() {
			for i := from + w; i < to; i += workers {
				e := ledger.Event{Type: "import.test.event", TaskID: fmt.Sprintf("l-%06d", i)}
				if _, err := ts.srv.Ledger().Append(context.Background(), e); err != nil {
					select {
					case errc <- err:
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
}

// FuzzTileRoute sends arbitrary paths under /ledger/tile/ to a real server:
// it must never fail with a 5xx, must answer 404 JSON for what it does not
// serve, and may answer 200 only for a well-formed tlog-tiles path.
func FuzzTileRoute(f *testing.F) {
	for _, s := range []string{
		"0/000", "0/000.p/1", "0/000.p/5", "entries/000", "entries/000.p/5", "1/000.p/1",
		"0/x001/234", "0/x000/001", "0/1", "0/000.p/0", "0/000.p/256", "00/000", "-1/000",
		"64/000", "entries/", "0/000.p/", "0/000.p/01", "0/x999/x999/x999/x999/x999/x999/x999/999",
		"0/000/../000", "0/%30%30%30", "entries/000.p/5/extra", "",
	} {
		f.Add(s)
	}
	ts := startServer(f, "")
	ctx := context.Background()
	for i := range 5 {
		if _, _, err := appendEvent(ctx, http.DefaultClient, ts, api.Event{Type: "import.test", TaskID: fmt.Sprint(i)}); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, p string) {
		u, err := url.Parse(ts.url + "/ledger/tile/" + p)
		if err != nil || u.Host != strings.TrimPrefix(ts.url, "http://") {
			t.Skip()
		}
		req, err := http.NewRequest(http.MethodGet, u.String(), nil)
		if err != nil {
			t.Skip()
		}
		req.Header.Set("Authorization", "Bearer "+ts.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %q: %v", u, err)
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode >= 500:
			t.Fatalf("GET %q = %d", u, resp.StatusCode)
		case resp.StatusCode == http.StatusOK:
			if _, err := ledger.ParseTilePath(strings.TrimPrefix(u.Path, "/ledger/")); err != nil {
				t.Errorf("GET %q = 200 for a path the parser rejects: %v", u, err)
			}
		case resp.StatusCode == http.StatusNotFound:
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("GET %q = 404 with Content-Type %q", u, ct)
			}
		}
	})
}
