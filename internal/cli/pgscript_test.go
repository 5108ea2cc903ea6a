package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/writhq/writ/internal/store/postgres/pgtest"
)

// scriptCondition answers [pg]: whether WRIT_TEST_POSTGRES_DSN names a
// database for the PostgreSQL scripts (which begin `[!pg] skip`).
func scriptCondition(cond string) (bool, error) {
	if cond == "pg" {
		return os.Getenv(pgtest.EnvDSN) != "", nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// cmdPgDSN gives a script a PostgreSQL schema of its own, dropped when the
// script ends, and sets WRIT_DSN to it.
//
//	pgdsn
func cmdPgDSN(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: pgdsn")
	}
	base := os.Getenv(pgtest.EnvDSN)
	if base == "" {
		ts.Fatalf("%s is not set (begin the script with [!pg] skip)", pgtest.EnvDSN)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "writ_script_" + hex.EncodeToString(b)
	ctx := context.Background()
	exec := func(q string) error {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, q)
		return err
	}
	if err := exec(`CREATE SCHEMA ` + schema); err != nil {
		ts.Fatalf("creating schema: %v", err)
	}
	ts.Defer(func() {
		if err := exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			ts.Logf("dropping schema %s: %v", schema, err)
		}
	})
	ts.Setenv("WRIT_DSN", pgtest.WithSearchPath(base, schema))
}
