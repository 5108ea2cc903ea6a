package server

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/task"
)

// MetaCredentialKeyID records the key ID of the credential signing key in
// the store, so a replica with a different key refuses to start.
const MetaCredentialKeyID = "credential_key_id"

// openStore opens the configured store: the SQLite file in the data
// directory (locked against a second server), or the PostgreSQL database
// several replicas share.
func openStore(ctx context.Context, cfg config.Config) (*datadir.Dir, error) {
	o := datadir.Options{Write: true, Origin: cfg.Ledger.Origin, KeyFile: cfg.Ledger.KeyFile}
	if cfg.Postgres() {
		dsn, err := cfg.StoreDSN()
		if err != nil {
			return nil, err
		}
		o.Store, o.DSN = datadir.StorePostgres, dsn
	}
	return datadir.Open(ctx, cfg.DataDir, o)
}

// coordinator returns the store's replica coordination, when it is shared.
func (s *Server) coordinator() task.Coordinator {
	if c, ok := s.dir.Store.(task.Coordinator); ok && s.dir.Backend == datadir.StorePostgres {
		return c
	}
	return nil
}

// followers are this process's followers of the ledger (the task state's,
// with replicas, and the query index's), each handed every commit.
type followers struct {
	mu   sync.Mutex
	list atomic.Pointer[[]*ledger.Follower]
}

// add hands f the commits from now on; what came before it reads from the
// store. A nil f is no follower.
func (fs *followers) add(f *ledger.Follower) {
	if f == nil {
		return
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var list []*ledger.Follower
	if p := fs.list.Load(); p != nil {
		list = append(list, *p...)
	}
	list = append(list, f)
	fs.list.Store(&list)
}

// ledgerCommitted is the ledger's OnCommit: every follower is handed
// this replica's commits, so that none reads them back from the store,
// and the sinks their leaves' hashes, so that none hashes them again.
func (s *Server) ledgerCommitted(first uint64, events []ledger.Event, leaves, hashes [][]byte) {
	if p := s.followers.list.Load(); p != nil {
		for _, f := range *p {
			f.Committed(first, events, leaves, hashes)
		}
	}
	if w := s.witnessLoop.Load(); w != nil {
		w.Notify()
	}
	if k := s.sinks.Load(); k != nil {
		k.Committed(first, events, leaves, hashes)
	}
}

// checkSharedKeys records the credential signing key's ID in the store at
// first start and refuses a replica whose key differs: tokens one replica
// issues must verify on every other. (The ledger's checkpoint key is
// checked the same way when the store opens.)
func (s *Server) checkSharedKeys(ctx context.Context) error {
	if s.dir.Backend != datadir.StorePostgres {
		return nil // one server: a new key is a rotation
	}
	kid := s.issuer.KeyID()
	recorded, err := s.dir.Store.InitMeta(ctx, MetaCredentialKeyID, kid)
	if err != nil {
		return err
	}
	if recorded != kid {
		where := "the data directory's credential.key"
		if s.cfg.Credentials.KeyFile != "" {
			where = s.cfg.Credentials.KeyFile
		}
		return fmt.Errorf("the credential signing key (%s, key ID %s) is not the one this store's other servers use (key ID %s); every replica must use the same key (credentials.key_file)", where, kid, recorded)
	}
	return nil
}
