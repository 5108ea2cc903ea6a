package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// SourceStore keeps the sources of every policy version ever loaded,
// addressed by version, so that any past decision can be replayed.
type SourceStore interface {
	// Put stores src under version. It returns an error, and stores nothing,
	// when version is not Version(src). Putting a version already stored is
	// not an error.
	Put(ctx context.Context, version string, src Sources) error
	// Get returns the sources of version, or an error wrapping ErrNotFound.
	// Sources that no longer hash to version are an error, never returned.
	Get(ctx context.Context, version string) (Sources, error)
}

// DirStore is a SourceStore on a directory: each version lives in
// <root>/<hex>/, with the engine name in ENGINE and the files under files/.
type DirStore struct {
	root string
}

var _ SourceStore = (*DirStore)(nil)

// NewDirStore returns a store rooted at root (conventionally
// <data-dir>/policies), creating it if needed.
func NewDirStore(root string) (*DirStore, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("policy source store: %w", err)
	}
	return &DirStore{root: root}, nil
}

// Put implements SourceStore. The version directory is written beside its
// final name and renamed into place, so a reader never sees half of it.
func (s *DirStore) Put(ctx context.Context, version string, src Sources) error {
	hexv, err := parseVersion(version)
	if err != nil {
		return err
	}
	if got := Version(src); got != version {
		return fmt.Errorf("policy source store: sources hash to %s, not %s", got, version)
	}
	final := filepath.Join(s.root, hexv)
	if _, err := os.Stat(final); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(s.root, ".put-")
	if err != nil {
		return fmt.Errorf("policy source store: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := writeSync(filepath.Join(tmp, "ENGINE"), []byte(src.Engine)); err != nil {
		return err
	}
	for _, f := range src.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !validPath(f.Path) {
			return fmt.Errorf("policy source store: invalid file path %q", f.Path)
		}
		p := filepath.Join(tmp, "files", filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return fmt.Errorf("policy source store: %w", err)
		}
		if err := writeSync(p, f.Data); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, serr := os.Stat(final); serr == nil {
			return nil // stored concurrently by another writer
		}
		return fmt.Errorf("policy source store: %w", err)
	}
	if d, err := os.Open(s.root); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func writeSync(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("policy source store: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("policy source store: %w", err)
	}
	return nil
}

// Get implements SourceStore.
func (s *DirStore) Get(ctx context.Context, version string) (Sources, error) {
	hexv, err := parseVersion(version)
	if err != nil {
		return Sources{}, err
	}
	dir := filepath.Join(s.root, hexv)
	engine, err := os.ReadFile(filepath.Join(dir, "ENGINE"))
	if errors.Is(err, fs.ErrNotExist) {
		return Sources{}, fmt.Errorf("%w: %s", ErrNotFound, version)
	}
	if err != nil {
		return Sources{}, fmt.Errorf("policy source store: %w", err)
	}
	src, err := loadFS(os.DirFS(filepath.Join(dir, "files")), version, strings.TrimSpace(string(engine)))
	if err != nil {
		return Sources{}, err
	}
	if got := Version(src); got != version {
		return Sources{}, fmt.Errorf("policy source store: stored sources of %s hash to %s (altered on disk)", version, got)
	}
	return src, nil
}

// MemStore is a SourceStore in memory, for tests and for callers that keep
// no history (the CLI's one-shot commands).
type MemStore struct {
	mu sync.Mutex
	m  map[string]Sources
}

var _ SourceStore = (*MemStore)(nil)

// NewMemStore returns an empty in-memory store, safe for concurrent use.
func NewMemStore() *MemStore { return &MemStore{m: map[string]Sources{}} }

// Put implements SourceStore.
func (s *MemStore) Put(_ context.Context, version string, src Sources) error {
	if got := Version(src); got != version {
		return fmt.Errorf("policy source store: sources hash to %s, not %s", got, version)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[version] = src
	return nil
}

// Get implements SourceStore.
func (s *MemStore) Get(_ context.Context, version string) (Sources, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	src, ok := s.m[version]
	if !ok {
		return Sources{}, fmt.Errorf("%w: %s", ErrNotFound, version)
	}
	return src, nil
}
