// Package query keeps an index of the ledger for questions an auditor asks
// — events by agent, principal, tool, resource, type, decision and time;
// who approved access to a resource; which tasks and credentials were live
// at an instant — and answers them. The index is a projection: a
// ledger.Follower feeds it new entries from its own high-water mark, kept
// in the index's own transactions, and it inserts rows idempotently, so it
// can be dropped and rebuilt at any time, and several servers may tail
// into one database.
package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/writhq/writ/internal/ledger"

	_ "modernc.org/sqlite" // the index's own database (OpenSQLite)
)

// Dialect is the SQL flavour of the index's database.
type Dialect string

// Dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Config configures an Index.
type Config struct {
	// DB holds the index tables; Store is the ledger they index.
	DB    *sql.DB
	Store ledger.Store
	// ReadDB, when set, answers queries, so that they do not wait on (or
	// hold up) the writers of DB. It must see DB's committed writes.
	ReadDB *sql.DB
	// Dialect of DB. Default SQLite.
	Dialect Dialect
	// Prefix starts every table name. Default "query_".
	Prefix string
	// Batch is how many leaves one transaction indexes. Default 1000.
	Batch int
	// PollInterval is how often Run looks for new leaves when not told.
	// Default 1s.
	PollInterval time.Duration
	// Settle is the least time between two catch-ups of Run: commits that
	// arrive meanwhile are indexed together, in fewer transactions. Zero
	// catches up on every Notify.
	Settle time.Duration
	Logger *slog.Logger
}

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,30}$`)

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.DB == nil:
		return errors.New("query: no database")
	case c.Store == nil:
		return errors.New("query: no ledger store")
	case c.Dialect != SQLite && c.Dialect != Postgres:
		return fmt.Errorf("query: dialect %q: want sqlite or postgres", c.Dialect)
	case !prefixRE.MatchString(c.Prefix):
		return fmt.Errorf("query: table prefix %q: want lowercase letters, digits and _", c.Prefix)
	case c.Batch <= 0:
		return errors.New("query: Batch must be positive")
	}
	return nil
}

// Index is the ledger's query index.
type Index struct {
	cfg Config
	log *slog.Logger
	t   tables
	// follow feeds the index the ledger: this replica's commits handed
	// over (Follower().Committed), the rest read from the store.
	follow *ledger.Follower
}

// tables are the index's table names.
type tables struct{ meta, events, tasks, creds string }

// New creates the index tables if needed. It does not catch up; call
// CatchUp or Run.
func New(ctx context.Context, cfg Config) (*Index, error) {
	if cfg.Dialect == "" {
		cfg.Dialect = SQLite
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "query_"
	}
	if cfg.Batch == 0 {
		cfg.Batch = 1000
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReadDB == nil {
		cfg.ReadDB = cfg.DB
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := cfg.Prefix
	ix := &Index{cfg: cfg, log: cfg.Logger,
		t: tables{meta: p + "meta", events: p + "events", tasks: p + "tasks", creds: p + "credentials"}}
	f, err := ledger.NewFollower(ledger.FollowerConfig{Store: cfg.Store, Consumer: tailer{ix}, Name: "query index",
		Batch: cfg.Batch, Interval: cfg.PollInterval, Settle: cfg.Settle, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	ix.follow = f
	for _, stmt := range ix.schema() {
		if _, err := cfg.DB.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("query index schema: %w", err)
		}
	}
	return ix, nil
}

func (ix *Index) schema() []string {
	t := ix.t
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + t.meta + ` (key TEXT PRIMARY KEY, value BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS ` + t.events + ` (idx BIGINT PRIMARY KEY, time TEXT NOT NULL, type TEXT NOT NULL,
		  task_id TEXT NOT NULL, principal TEXT NOT NULL, agent TEXT NOT NULL, decision_id TEXT NOT NULL,
		  policy_version TEXT NOT NULL, jti TEXT NOT NULL, tool TEXT NOT NULL, operation TEXT NOT NULL,
		  resource TEXT NOT NULL, decision TEXT NOT NULL, approval_id TEXT NOT NULL, approver TEXT NOT NULL,
		  environment TEXT NOT NULL, action_id TEXT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS ` + t.events + `_task ON ` + t.events + ` (task_id, idx)`,
		`CREATE INDEX IF NOT EXISTS ` + t.events + `_agent ON ` + t.events + ` (agent, idx)`,
		`CREATE INDEX IF NOT EXISTS ` + t.events + `_principal ON ` + t.events + ` (principal, idx)`,
		`CREATE INDEX IF NOT EXISTS ` + t.events + `_tool ON ` + t.events + ` (tool, idx)`,
		`CREATE INDEX IF NOT EXISTS ` + t.events + `_resource ON ` + t.events + ` (resource, idx)`,
		`CREATE INDEX IF NOT EXISTS ` + t.events + `_type ON ` + t.events + ` (type, idx)`,
		`CREATE INDEX IF NOT EXISTS ` + t.events + `_time ON ` + t.events + ` (time)`,
		// What an approval's decision and a call's result look up, and
		// only that: the one event of each ID that names its tool and
		// resource (row, in tail.go). Events of other types add nothing.
		`DROP INDEX IF EXISTS ` + t.events + `_approval`,
		`DROP INDEX IF EXISTS ` + t.events + `_action`,
		`CREATE INDEX IF NOT EXISTS ` + t.events + `_approval_requested ON ` + t.events +
			` (approval_id) WHERE type = '` + ledger.TypeApprovalRequested + `'`,
		`CREATE INDEX IF NOT EXISTS ` + t.events + `_action_authorized ON ` + t.events +
			` (action_id, task_id) WHERE type = '` + ledger.TypeActionAuthorized + `'`,
		`CREATE TABLE IF NOT EXISTS ` + t.tasks + ` (task_id TEXT PRIMARY KEY, parent TEXT NOT NULL,
		  principal TEXT NOT NULL, agent TEXT NOT NULL, scope TEXT NOT NULL, environment TEXT NOT NULL,
		  ttl_seconds BIGINT NOT NULL, requested_at TEXT NOT NULL, activated_at TEXT NOT NULL,
		  expires_at TEXT NOT NULL, ended_at TEXT NOT NULL, end_type TEXT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS ` + t.tasks + `_parent ON ` + t.tasks + ` (parent)`,
		`CREATE INDEX IF NOT EXISTS ` + t.tasks + `_agent ON ` + t.tasks + ` (agent)`,
		`CREATE TABLE IF NOT EXISTS ` + t.creds + ` (jti TEXT PRIMARY KEY, task_id TEXT NOT NULL, agent TEXT NOT NULL,
		  issued_at TEXT NOT NULL, expires_at TEXT NOT NULL, revoked_at TEXT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS ` + t.creds + `_task ON ` + t.creds + ` (task_id)`,
	}
}

// Drop removes the index's tables (tests; or to rebuild from scratch).
func (ix *Index) Drop(ctx context.Context) error {
	for _, t := range []string{ix.t.meta, ix.t.events, ix.t.tasks, ix.t.creds} {
		if _, err := ix.cfg.DB.ExecContext(ctx, `DROP TABLE IF EXISTS `+t); err != nil {
			return err
		}
	}
	return nil
}

// q rewrites ? placeholders for the dialect.
func (ix *Index) q(s string) string {
	if ix.cfg.Dialect != Postgres {
		return s
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Follower is the index's follower of the ledger: the ledger's OnCommit
// hands it this replica's commits (Committed), so that the index need not
// read them back from the store; its LastError says why following fails.
func (ix *Index) Follower() *ledger.Follower { return ix.follow }

// Run catches up at once, then whenever the follower is handed commits or
// PollInterval passes, until ctx is done. Errors are logged, reported by
// Follower().LastError and retried: the index is a projection, and queries
// catch up themselves before answering.
func (ix *Index) Run(ctx context.Context) { ix.follow.Run(ctx) }

// DialectOf guesses the dialect of db from its driver: PostgreSQL for the
// pgx driver, SQLite otherwise.
func DialectOf(db *sql.DB) Dialect {
	if strings.Contains(fmt.Sprintf("%T", db.Driver()), "pgx") || strings.Contains(fmt.Sprintf("%T", db.Driver()), "stdlib") {
		return Postgres
	}
	return SQLite
}

// SQLiteFile is the name of the index's own database in a data directory.
const SQLiteFile = "query.db"

// OpenSQLite opens (creating if needed) an index database of its own at
// path: a write handle with one connection, and a read handle for queries.
// Keeping the index out of the ledger's database means its writes never
// take the lock the ledger commits under, and they skip the flush the
// ledger needs (synchronous=NORMAL): the index is rebuilt from the ledger
// after any loss.
func OpenSQLite(path string) (w, r *sql.DB, err error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "busy_timeout(10000)", "temp_store(MEMORY)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	w, err = sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, nil, err
	}
	w.SetMaxOpenConns(1)
	// The first connection creates the file and sets WAL before a reader
	// opens it.
	if err := w.Ping(); err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("opening %s: %w", path, err)
	}
	q.Add("_pragma", "query_only(1)")
	r, err = sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		w.Close()
		return nil, nil, err
	}
	r.SetMaxOpenConns(4)
	return w, r, nil
}
