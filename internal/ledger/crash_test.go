package ledger_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/ledger"
)

// The crash test runs this test binary as a child that appends until it is
// killed. These variables tell the child what to do.
const (
	crashChildDir  = "WRIT_CRASH_CHILD_DIR"
	crashChildBase = "WRIT_CRASH_CHILD_BASE"
)

// TestCrashKeepsAcknowledgedEvents kills a writer with SIGKILL at random
// moments, again and again, and checks that every event it acknowledged
// survived at the index it was given, and that the ledger still verifies
// and takes appends. WRIT_CRASH_ROUNDS sets the number of kills (default 20)
// and WRIT_CRASH_SEED the random seed.
func TestCrashKeepsAcknowledgedEvents(t *testing.T) {
	if dir := os.Getenv(crashChildDir); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	rounds := envInt(t, "WRIT_CRASH_ROUNDS", 20)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("WRIT_CRASH_SEED"); s != "" {
		seed = uint64(envInt(t, "WRIT_CRASH_SEED", 0))
	}
	t.Logf("seed %d (WRIT_CRASH_SEED reproduces the kill times)", seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	dir := t.TempDir()
	acked := map[uint64]int64{} // index -> n, over every round
	for round := range rounds {
		delay := time.Duration(20+rng.IntN(181)) * time.Millisecond
		got := crashRound(t, dir, int64(round)<<32, delay)
		if len(got) == 0 {
			t.Fatalf("round %d: the child acknowledged nothing", round)
		}
		for idx, n := range got {
			if prev, ok := acked[idx]; ok {
				t.Fatalf("round %d: index %d acknowledged for n=%d, but an earlier round was given it for n=%d", round, idx, n, prev)
			}
			acked[idx] = n
		}
	}

	ctx := context.Background()
	d, err := datadir.Open(ctx, dir, datadir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	leaves := readAllLeaves(t, d.Store)
	for idx, n := range acked {
		if idx >= uint64(len(leaves)) {
			t.Fatalf("acknowledged index %d is gone: the store holds %d events", idx, len(leaves))
		}
		if got := eventN(t, idx, leaves[idx]); int64(got) != n {
			t.Fatalf("index %d holds n=%d, but it was acknowledged for n=%d", idx, got, n)
		}
	}
	rep := mustVerifyOK(t, d.Store, d.VerifierKey)
	t.Logf("%d rounds: %d events stored, %d acknowledged, %d checkpoints, %d uncovered at the last kill",
		rounds, rep.Size, len(acked), rep.Checkpoints, rep.Uncovered)
	vkey := d.VerifierKey
	d.Close()

	// A restart signs a checkpoint over whatever the crash left and appends on.
	d2, l := openDir(t, dir, nil)
	idx, err := l.Append(ctx, testEvent(-1, true))
	if err != nil {
		t.Fatal(err)
	}
	if idx != rep.Size {
		t.Errorf("append after the crashes got index %d, want %d", idx, rep.Size)
	}
	closeAll(t, d2, l)
	st := reopenStore(t, dir)
	final := mustVerifyOK(t, st, vkey)
	if final.Uncovered != 0 || final.Size != rep.Size+1 {
		t.Errorf("after restart: size %d uncovered %d, want %d and 0", final.Size, final.Uncovered, rep.Size+1)
	}
}

// crashRound starts a child appender on dir, kills it delay after its first
// acknowledgement and returns what it acknowledged.
func crashRound(t *testing.T, dir string, base int64, delay time.Duration) map[uint64]int64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKeepsAcknowledgedEvents$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildDir+"="+dir, crashChildBase+"="+strconv.FormatInt(base, 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := make(chan struct{})
	acked := map[uint64]int64{}
	readErr := make(chan error, 1)
	go func() {
		r := bufio.NewReader(out)
		once := sync.Once{}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				// A line cut off by the kill was never a complete
				// acknowledgement.
				if err == io.EOF {
					err = nil
				}
				readErr <- err
				return
			}
			var idx uint64
			var n int64
			if _, err := fmt.Sscanf(line, "ack %d %d\n", &idx, &n); err != nil {
				readErr <- fmt.Errorf("child wrote %q", line)
				return
			}
			if prev, dup := acked[idx]; dup {
				readErr <- fmt.Errorf("index %d acknowledged twice (n=%d and n=%d)", idx, prev, n)
				return
			}
			acked[idx] = n
			once.Do(func() { close(first) })
		}
	}()
	select {
	case <-first:
		time.Sleep(delay)
	case <-time.After(20 * time.Second):
		t.Errorf("the child acknowledged nothing in 20s")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	werr := <-readErr
	state := cmd.Wait()
	if werr != nil {
		t.Fatalf("%v\nchild stderr:\n%s", werr, stderr.String())
	}
	if ee, ok := state.(*exec.ExitError); !ok || ee.Exited() {
		t.Fatalf("the child ended on its own (%v) before it was killed\nstderr:\n%s", state, stderr.String())
	}
	return acked
}

// crashChild is the child: it appends from 8 goroutines until killed,
// printing "ack <index> <n>" once each append is acknowledged.
func crashChild(dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	base, err := strconv.ParseInt(os.Getenv(crashChildBase), 10, 64)
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	d, err := datadir.Open(ctx, dir, datadir.Options{Write: true, Origin: "test.writ.example/ledger"})
	if err != nil {
		fail(err)
	}
	l, err := ledger.New(ctx, ledger.Config{Store: d.Store, Signer: d.Signer})
	if err != nil {
		fail(err)
	}
	var next atomic.Int64
	next.Store(base)
	var mu sync.Mutex
	for range 8 {
		go func() {
			for {
				n := next.Add(1)
				idx, err := l.Append(ctx, testEvent(int(n), n%4 == 0))
				if err != nil {
					fail(err)
				}
				mu.Lock()
				// One write per line, so a kill never interleaves two.
				_, err = os.Stdout.WriteString("ack " + strconv.FormatUint(idx, 10) + " " + strconv.FormatInt(n, 10) + "\n")
				mu.Unlock()
				if err != nil {
					fail(err)
				}
			}
		}()
	}
	select {}
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := strings.TrimSpace(os.Getenv(name))
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}
