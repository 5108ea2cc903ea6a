// Package datadir opens a writ data directory: the store (the SQLite file in
// the directory, or a PostgreSQL database several replicas share), the
// ledger's signing key and origin, and, for SQLite, the lock that keeps two
// writers apart.
package datadir

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/postgres"
	"github.com/writhq/writ/internal/store/sqlite"
)

// Store backends.
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

// Store is an open ledger store that also holds projection tables.
type Store interface {
	ledger.Store
	DB() *sql.DB
}

// LockFile is held (flock) by the process that writes the directory.
const LockFile = "LOCK"

// Meta keys recorded in the store at first start.
const (
	MetaOrigin      = "origin"
	MetaVerifierKey = "verifier_key"
)

// ErrLocked reports that another process (a running server) holds the
// directory.
var ErrLocked = errors.New("data directory is in use")

// ErrNoDir reports that the data directory does not exist.
var ErrNoDir = errors.New("no writ data directory")

// LockedError says who holds the directory.
type LockedError struct {
	Dir string
	PID int
}

func (e *LockedError) Error() string {
	who := "another writ process"
	if e.PID > 0 {
		who = fmt.Sprintf("another writ process (pid %d)", e.PID)
	}
	return fmt.Sprintf("data directory %s is in use by %s", e.Dir, who)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// Options says how to open a directory.
type Options struct {
	// Write takes the directory's lock and loads the signing key, creating
	// the directory, store and key on first use.
	Write bool
	// Origin is the configured log origin; empty keeps the recorded one or,
	// at first start, derives one.
	Origin string
	// Store is StoreSQLite (default: the file in the directory) or
	// StorePostgres (DSN names the database; no directory lock is taken,
	// since several replicas share the database).
	Store string
	DSN   string
	// KeyFile is the checkpoint signing key; empty means ledger.key in the
	// directory. Replicas on one database must all use the same key.
	KeyFile string
}

// Dir is an open data directory.
type Dir struct {
	Path  string
	Store Store
	// Backend is StoreSQLite or StorePostgres.
	Backend     string
	Origin      string
	VerifierKey string
	Signer      *ledger.KeyPair // nil unless opened for writing

	lock *os.File
}

// Open opens the data directory at path.
func Open(ctx context.Context, path string, o Options) (*Dir, error) {
	switch o.Store {
	case "", StoreSQLite:
	case StorePostgres:
		return openPostgres(ctx, path, o)
	default:
		return nil, fmt.Errorf("store %q: want sqlite or postgres", o.Store)
	}
	d := &Dir{Path: path, Backend: StoreSQLite}
	if o.Write {
		if err := os.MkdirAll(path, 0o700); err != nil {
			return nil, err
		}
		if err := d.takeLock(); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(filepath.Join(path, sqlite.FileName)); err != nil {
		return nil, fmt.Errorf("%w at %s", ErrNoDir, path)
	}
	st, err := sqlite.Open(ctx, filepath.Join(path, sqlite.FileName))
	if err != nil {
		d.Close()
		return nil, err
	}
	return d.attach(ctx, st, o)
}

// openPostgres opens the shared store. The directory, when writing, still
// holds this replica's local files (policy versions, the dev issuer).
func openPostgres(ctx context.Context, path string, o Options) (*Dir, error) {
	if o.DSN == "" {
		return nil, errors.New("the postgres store needs a DSN (--dsn, dsn in the config file, or WRIT_DSN)")
	}
	d := &Dir{Path: path, Backend: StorePostgres}
	if o.Write {
		if err := os.MkdirAll(path, 0o700); err != nil {
			return nil, err
		}
	}
	st, err := postgres.Open(ctx, o.DSN, postgres.Options{})
	if err != nil {
		return nil, err
	}
	return d.attach(ctx, st, o)
}

// attach makes st the directory's store and loads the ledger's identity
// from it. If that fails it closes the directory, and st with it.
func (d *Dir) attach(ctx context.Context, st Store, o Options) (*Dir, error) {
	d.Store = st
	if err := d.loadIdentity(ctx, o); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// where names the store in messages.
func (d *Dir) where() string {
	if d.Backend == StorePostgres {
		return "the PostgreSQL store"
	}
	return d.Path
}

func (d *Dir) loadIdentity(ctx context.Context, o Options) error {
	var keyed *ledger.KeyPair
	var keyedV string
	if o.Write && o.KeyFile != "" {
		var err error
		if keyed, keyedV, err = ledger.LoadKeyFile(o.KeyFile, o.Origin); err != nil {
			return err
		}
	}
	origin, err := d.Store.Meta(ctx, MetaOrigin)
	switch {
	case errors.Is(err, ledger.ErrNotFound) && o.Write:
		origin = o.Origin
		if origin == "" && keyed != nil {
			origin = keyed.Name()
		}
		if origin == "" {
			origin = "writ.local/" + randomHex(6)
		}
		if !validOrigin(origin) {
			return fmt.Errorf("ledger origin %q: want a name without spaces or '+', like example.com/writ", origin)
		}
		if origin, err = d.Store.InitMeta(ctx, MetaOrigin, origin); err != nil {
			return err
		}
	case errors.Is(err, ledger.ErrNotFound):
		return fmt.Errorf("%w at %s (no ledger has been started there)", ErrNoDir, d.where())
	case err != nil:
		return err
	case o.Origin != "" && o.Origin != origin:
		return fmt.Errorf("configured ledger origin %q differs from this ledger's %q; an origin cannot change", o.Origin, origin)
	}
	d.Origin = origin
	recorded, err := d.Store.Meta(ctx, MetaVerifierKey)
	if err != nil && !errors.Is(err, ledger.ErrNotFound) {
		return err
	}
	if !o.Write {
		if recorded == "" {
			return fmt.Errorf("ledger at %s has no recorded verifier key", d.where())
		}
		d.VerifierKey = recorded
		return nil
	}
	if keyed != nil {
		if keyed.Name() != origin {
			return fmt.Errorf("signing key %s is for log %q, but this ledger's origin is %q", o.KeyFile, keyed.Name(), origin)
		}
		if recorded, err = d.Store.InitMeta(ctx, MetaVerifierKey, keyedV); err != nil {
			return err
		}
		if recorded != keyedV {
			return fmt.Errorf("signing key %s does not match the ledger's recorded verifier key %s; every replica must use the same key", o.KeyFile, recorded)
		}
		d.Signer, d.VerifierKey = keyed, keyedV
		return nil
	}
	if recorded != "" {
		if _, err := os.Stat(filepath.Join(d.Path, ledger.KeyFile)); errors.Is(err, os.ErrNotExist) {
			if d.Backend == StorePostgres {
				return fmt.Errorf("the ledger's signing key is not in %s; give this replica the key the others use (ledger.key_file, or WRIT_LEDGER_KEY_FILE)", d.Path)
			}
			return fmt.Errorf("the ledger's signing key %s is missing; restore it from backup (a new key would not match the recorded verifier key)", filepath.Join(d.Path, ledger.KeyFile))
		}
	}
	signer, vkey, err := ledger.LoadOrCreateKey(d.Path, origin)
	if err != nil {
		return err
	}
	if recorded, err = d.Store.InitMeta(ctx, MetaVerifierKey, vkey); err != nil {
		return err
	}
	if recorded != vkey {
		return fmt.Errorf("signing key %s does not match the ledger's recorded verifier key %s; every replica must use the same key", filepath.Join(d.Path, ledger.KeyFile), recorded)
	}
	d.Signer, d.VerifierKey = signer, vkey
	return nil
}

func (d *Dir) takeLock() error {
	f, err := os.OpenFile(filepath.Join(d.Path, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:n])))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return &LockedError{Dir: d.Path, PID: pid}
		}
		return fmt.Errorf("locking %s: %w", d.Path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	d.lock = f
	return nil
}

// Close closes the store and releases the lock.
func (d *Dir) Close() error {
	var err error
	if d.Store != nil {
		err = d.Store.Close()
	}
	if d.lock != nil {
		d.lock.Close() // releases the flock
		d.lock = nil
	}
	return err
}

func validOrigin(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == '+' || r == 0x7f {
			return false
		}
	}
	return true
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
