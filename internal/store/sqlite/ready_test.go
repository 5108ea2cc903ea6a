package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/sqlite"
	"github.com/writhq/writ/internal/store/storetest"
)

// newLedger starts a ledger on a store at path.
func newLedger(t *testing.T, path string) (*ledger.Ledger, *sqlite.Store) {
	t.Helper()
	s := openStore(t, path)
	l, err := ledger.New(context.Background(), ledger.Config{Store: s, Signer: storetest.NewKey(t, "ready.example/log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	return l, s
}

// TestFileDeletedOrReplacedStopsAcknowledgements: once the database file
// or its log is deleted or replaced under the store, no append is
// acknowledged again and the ledger is not ready, whatever is put back at
// the path.
func TestFileDeletedOrReplacedStopsAcknowledgements(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		do   func(t *testing.T, path string)
	}{
		{"database deleted", func(t *testing.T, path string) { must(t, os.Remove(path)) }},
		{"log deleted", func(t *testing.T, path string) { must(t, os.Remove(path+"-wal")) }},
		{"database replaced", func(t *testing.T, path string) {
			other := filepath.Join(t.TempDir(), "other.db")
			s, err := sqlite.Open(ctx, other)
			must(t, err)
			s.Close()
			must(t, os.Rename(other, path))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), sqlite.FileName)
			l, _ := newLedger(t, path)
			if _, err := l.Append(ctx, ledger.Event{Type: "import.before"}); err != nil {
				t.Fatal(err)
			}
			if err := l.Ready(ctx); err != nil {
				t.Fatalf("Ready before: %v", err)
			}
			tt.do(t, path)
			for i := range 3 {
				_, err := l.Append(ctx, ledger.Event{Type: "import.after"})
				if !errors.Is(err, ledger.ErrUnavailable) || !errors.Is(err, ledger.ErrStoreGone) {
					t.Fatalf("append %d after the file went: %v, want ErrUnavailable and ErrStoreGone", i, err)
				}
				if err := l.Ready(ctx); !errors.Is(err, ledger.ErrStoreGone) {
					t.Fatalf("Ready after the file went: %v", err)
				}
			}
		})
	}
}

// TestFullDiskIsNotReady fills a small tmpfs under the store: appends fail
// and are not acknowledged, Ready reports it; once there is room again a
// probe commit succeeds, Ready is nil, and appends are acknowledged.
func TestFullDiskIsNotReady(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=6m"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must run this as root, able to mount a tmpfs: %v", err)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	l, _ := newLedger(t, filepath.Join(dir, sqlite.FileName))
	if _, err := l.Append(ctx, ledger.Event{Type: "import.before"}); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	must(t, err)
	chunk := bytes.Repeat([]byte{1}, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	body := map[string][]byte{"note": bytes.Repeat([]byte("x"), 32<<10)}
	failed := false
	for i := 0; i < 100 && !failed; i++ {
		_, err := l.Append(ctx, ledger.Event{Type: "import.full", Bodies: body})
		switch {
		case errors.Is(err, ledger.ErrUnavailable):
			failed = true
		case err != nil:
			t.Fatalf("append on a full disk: %v", err)
		}
	}
	if !failed {
		t.Fatal("100 appends of 32 KiB each succeeded on a full 6 MiB file system")
	}
	if err := l.Ready(ctx); err == nil {
		t.Fatal("Ready after a failed commit on a full disk: nil")
	}
	must(t, os.Remove(filler))
	if err := l.Ready(ctx); err != nil {
		t.Fatalf("Ready once there is room again: %v", err)
	}
	if _, err := l.Append(ctx, ledger.Event{Type: "import.after", Bodies: body}); err != nil {
		t.Fatalf("append once there is room again: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkHealthy measures the check each commit makes that the files
// are still the ones opened (two stat and two fstat calls).
func BenchmarkHealthy(b *testing.B) {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), sqlite.FileName))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for b.Loop() {
		if err := s.Healthy(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
