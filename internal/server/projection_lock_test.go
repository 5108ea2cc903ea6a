package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/store/postgres"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
)

// TestProjectionLockLost: the replica that writes the projection tables
// holds the replicas' projection lock in a session of its own. When that
// session ends under it, it stops writing, takes the lock again in a new
// session, rewrites the tables, and goes on writing them: a task opened
// afterwards is in them, and they match the ledger. A replica that went
// on writing without the lock would leave it free, and this fails.
func TestProjectionLockLost(t *testing.T) {
	dsn := pgtest.DSN(t)
	ts := startPostgres(t, postgresConfig(t, dsn, t.TempDir()))
	alice := devTokenFor(t, ts, "alice", identity.RoleRequester)
	openTask(t, ts, alice, agentA, invoiceScope("dev"), nil)

	st, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key := st.LockKey("projection")
	st.Close()
	testkit.Eventually(t, 30*time.Second, func() error {
		if _, held := pgtest.LockHolder(t, dsn, key); !held {
			return fmt.Errorf("nobody holds the projection lock")
		}
		return nil
	})
	old := pgtest.TerminateLockHolder(t, dsn, key)

	later := openTask(t, ts, alice, agentA, invoiceScope("dev"), nil)
	d := openDir(t, t.TempDir(), datadir.Options{Store: datadir.StorePostgres, DSN: dsn})
	defer d.Close()
	testkit.Eventually(t, 30*time.Second, func() error {
		pid, held := pgtest.LockHolder(t, dsn, key)
		if !held || pid == old {
			return fmt.Errorf("the projection lock is held by %d (%v); the lost session was %d", pid, held, old)
		}
		var n int
		if err := d.Store.DB().QueryRow(`SELECT count(*) FROM tasks WHERE task_id = $1`, later.TaskID).Scan(&n); err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("task %s is not in the projection tables", later.TaskID)
		}
		diffs, err := task.CheckProjections(context.Background(), d.Store, d.Store.DB())
		if err != nil || len(diffs) > 0 {
			return fmt.Errorf("projection tables: %v %v", diffs, err)
		}
		return nil
	})
}
