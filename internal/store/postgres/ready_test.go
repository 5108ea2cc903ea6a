package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/postgres"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
	"github.com/writhq/writ/internal/store/storetest"
)

// TestReadyReflectsFailedCommit: once a commit fails the ledger is not
// ready, and stays so while writes keep failing; once the database takes
// writes again it is ready and appends are acknowledged.
func TestReadyReflectsFailedCommit(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s := openStore(t, dsn, postgres.Options{})
	l, err := ledger.New(ctx, ledger.Config{Store: s, Signer: storetest.NewKey(t, "ready.example/log")})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	if _, err := l.Append(ctx, ledger.Event{Type: "import.before"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	// The database refuses writes (as when its disk is full).
	for _, q := range []string{
		`ALTER TABLE leaves ADD CONSTRAINT refuse_writes CHECK (false) NOT VALID`,
		`ALTER TABLE meta ADD CONSTRAINT refuse_writes CHECK (key <> 'ready_probe') NOT VALID`,
	} {
		if _, err := s.Pool().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Append(ctx, ledger.Event{Type: "import.refused"}); !errors.Is(err, ledger.ErrUnavailable) {
		t.Fatalf("append while writes are refused: %v", err)
	}
	for range 2 {
		if err := l.Ready(ctx); err == nil {
			t.Fatal("Ready after a failed commit, while writes are still refused: nil")
		}
	}
	for _, q := range []string{`ALTER TABLE leaves DROP CONSTRAINT refuse_writes`, `ALTER TABLE meta DROP CONSTRAINT refuse_writes`} {
		if _, err := s.Pool().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Ready(ctx); err != nil {
		t.Fatalf("Ready once writes succeed again: %v", err)
	}
	if _, err := l.Append(ctx, ledger.Event{Type: "import.after"}); err != nil {
		t.Fatal(err)
	}
	// A database that does not answer is not ready.
	s.Close()
	if err := l.Ready(ctx); err == nil {
		t.Error("Ready with the store closed: nil")
	}
}
