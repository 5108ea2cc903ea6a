// Package pgtest gives tests a PostgreSQL schema of their own on the
// database named by WRIT_TEST_POSTGRES_DSN, dropped when the test ends.
// Tests that need it skip when the variable is unset, unless CI is set.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the variable that points tests at a PostgreSQL database.
const EnvDSN = "WRIT_TEST_POSTGRES_DSN"

// DSN creates a fresh schema and returns a DSN whose search_path selects
// it. It skips the test when EnvDSN is unset, and fails it when CI is set.
func DSN(t testing.TB) string {
	t.Helper()
	base := Base(t)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "writ_test_" + hex.EncodeToString(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to %s: %v", EnvDSN, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(base, schema)
}

// Base returns EnvDSN's database as set, for a test that makes its own
// schemas. It skips the test when EnvDSN is unset, and fails it when CI
// is set: CI runs every PostgreSQL test (.ci/run sets EnvDSN).
func Base(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvDSN)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatal(EnvDSN + " is not set; CI runs the PostgreSQL tests (.ci/run sets it)")
		}
		t.Skip(EnvDSN + " is not set; skipping the PostgreSQL test")
	}
	return base
}

// WithSearchPath returns dsn with its search_path set to schema.
func WithSearchPath(dsn, schema string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return strings.TrimSpace(dsn) + " search_path=" + schema
}

// TerminateLockHolder ends the session that holds the advisory lock key
// (a bigint key, as Store.LockKey gives) on dsn's database, as a dropped
// connection or a restarted backend would, and returns its process id.
func TerminateLockHolder(t testing.TB, dsn string, key int64) int32 {
	t.Helper()
	pid, ok := LockHolder(t, dsn, key)
	if !ok {
		t.Fatalf("lock %d has no holder", key)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminating backend %d: %v, %v", pid, ok, err)
	}
	return pid
}

// LockHolder returns the process id of the session that holds the
// advisory lock key on dsn's database, and false when none does.
func LockHolder(t testing.TB, dsn string, key int64) (int32, bool) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// A bigint key is kept as its high and low halves.
	var pid int32
	err = conn.QueryRow(ctx, `SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND classid = $1 AND objid = $2
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		uint32(uint64(key)>>32), uint32(key)).Scan(&pid)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false
	}
	if err != nil {
		t.Fatalf("finding the holder of lock %d: %v", key, err)
	}
	return pid, true
}
