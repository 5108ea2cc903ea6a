package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Store backends.
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

// Where the event query index lives (Config.QueryIndex).
const (
	QueryIndexLocal  = "local"
	QueryIndexShared = "shared"
)

// SharedQueryIndex reports whether the query index is kept in the
// PostgreSQL store's database rather than in the data directory.
func (c Config) SharedQueryIndex() bool { return c.QueryIndex == QueryIndexShared }

// Postgres reports whether the ledger is in PostgreSQL: store is postgres,
// or unset with a DSN given.
func (c Config) Postgres() bool {
	return c.Store == StorePostgres || (c.Store == "" && (c.DSN != "" || c.DSNFile != ""))
}

func (c Config) validateStore() error {
	switch c.Store {
	case "":
		if c.DSN != "" && c.DSNFile != "" {
			return errors.New("set one of dsn (or WRIT_DSN) and dsn_file, not both")
		}
	case StoreSQLite:
		if c.DSN != "" || c.DSNFile != "" {
			return errors.New("dsn is set but store is sqlite; set store: postgres to use it")
		}
	case StorePostgres:
		if (c.DSN == "") == (c.DSNFile == "") {
			return errors.New("store postgres needs exactly one of dsn (or WRIT_DSN) and dsn_file")
		}
	default:
		return fmt.Errorf("store %q: want sqlite or postgres", c.Store)
	}
	switch c.QueryIndex {
	case "", QueryIndexLocal:
	case QueryIndexShared:
		if !c.Postgres() {
			return errors.New("query_index shared keeps the index in the PostgreSQL store; with store sqlite it is always local")
		}
	default:
		return fmt.Errorf("query_index %q: want local or shared", c.QueryIndex)
	}
	return nil
}

// StoreDSN returns the PostgreSQL connection string, from DSN or read from
// DSNFile. Errors never include the DSN.
func (c Config) StoreDSN() (string, error) {
	if c.DSNFile == "" {
		return c.DSN, nil
	}
	b, err := os.ReadFile(c.DSNFile)
	if err != nil {
		return "", fmt.Errorf("reading dsn_file: %w", err)
	}
	dsn := strings.TrimSpace(string(b))
	if dsn == "" {
		return "", fmt.Errorf("dsn_file %s is empty", c.DSNFile)
	}
	return dsn, nil
}
