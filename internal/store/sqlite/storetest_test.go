package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/sqlite"
	"github.com/writhq/writ/internal/store/storetest"
)

func TestStoreSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func(*testing.T) ledger.Store {
		path := filepath.Join(t.TempDir(), sqlite.FileName)
		return func(t *testing.T) ledger.Store { return openStore(t, path) }
	})
}
