package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/writhq/writ/internal/ledger"
)

// files watches that the database file and its write-ahead log at their
// paths are still the ones the store opened. SQLite keeps writing to the
// files it has open: after an rm of writ.db, or a copy moved over it, every
// commit still succeeds, into a file nobody will open again, and is lost at
// the next start. So each commit is checked afterwards (a few stat calls,
// no I/O), and the first mismatch stops the store for good: the process
// must restart on the right file.
type files struct {
	paths [2]string   // the database and its -wal
	open  [2]*os.File // held open, so the inode cannot be reused
	lost  atomic.Pointer[error]
}

func openFiles(path string) (*files, error) {
	f := &files{paths: [2]string{path, path + "-wal"}}
	for i, p := range f.paths {
		h, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) && i == 1 {
			continue // no log yet: nothing to compare
		}
		if err != nil {
			f.close()
			return nil, err
		}
		f.open[i] = h
	}
	return f, nil
}

func (f *files) close() {
	for _, h := range f.open {
		if h != nil {
			h.Close()
		}
	}
}

// lostErr is check's sticky result alone: no system call.
func (f *files) lostErr() error {
	if p := f.lost.Load(); p != nil {
		return *p
	}
	return nil
}

// check returns an error wrapping ledger.ErrStoreGone once either file
// was deleted or replaced, and from then on.
func (f *files) check() error {
	if p := f.lost.Load(); p != nil {
		return *p
	}
	for i, h := range f.open {
		if h == nil {
			continue
		}
		if why := replaced(f.paths[i], h); why != "" {
			err := fmt.Errorf("%w: %s %s; restart writ on the right file", ledger.ErrStoreGone, f.paths[i], why)
			f.lost.CompareAndSwap(nil, &err)
			return *f.lost.Load()
		}
	}
	return nil
}

// replaced says how path is no longer the file h has open, or "".
func replaced(path string, h *os.File) string {
	held, err := h.Stat()
	if err != nil {
		return "cannot be checked: " + err.Error()
	}
	hs, ok := held.Sys().(*syscall.Stat_t)
	if !ok {
		return "" // no device and inode to compare on this system
	}
	if hs.Nlink == 0 {
		return "was deleted"
	}
	now, err := os.Stat(path)
	if err != nil {
		return "is gone: " + err.Error()
	}
	ns, ok := now.Sys().(*syscall.Stat_t)
	if !ok || ns.Dev != hs.Dev || ns.Ino != hs.Ino {
		return "was replaced by another file"
	}
	return ""
}

// Healthy implements ledger.HealthChecker: the files are still the ones
// opened.
func (s *Store) Healthy(ctx context.Context) error { return s.files.check() }

// Probe implements ledger.Prober: one small durable write beside the log.
func (s *Store) Probe(ctx context.Context) error {
	if err := s.files.check(); err != nil {
		return err
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES ('ready_probe', ?)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value`, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return err
	}
	return s.files.check()
}

var (
	_ ledger.HealthChecker = (*Store)(nil)
	_ ledger.Prober        = (*Store)(nil)
)
