package server

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/query"
	"github.com/writhq/writ/internal/refusal"
)

// queryTailer runs the ledger's query index: caught up at start, then as
// the ledger grows (and by every query before it answers).
type queryTailer struct {
	ix     *query.Index
	dbs    []*sql.DB // the index's own database handles, on SQLite
	cancel context.CancelFunc
	done   chan struct{}
}

func (t *queryTailer) close() error {
	var errs []error
	for _, db := range t.dbs {
		errs = append(errs, db.Close())
	}
	return errors.Join(errs...)
}

// How the query index follows the ledger (openQuery).
const (
	indexBatch  = 5000
	indexSettle = 500 * time.Millisecond
)

// openQuery opens the query index and starts its tailer. The index has a
// database file of its own in the data directory, so that its writes never
// wait on (or hold up) the ledger's commits, nor cost the store's database
// anything: each PostgreSQL replica then keeps its own, following every
// replica's events. With query_index shared it lives in the PostgreSQL
// store's database instead, one for all the replicas
// (docs/design/query-index.md).
//
// The index is brought up to date by every query that reads it, so between
// queries it may lag: it takes this replica's commits at most every
// indexSettle, up to indexBatch of them to a transaction, where fewer and
// larger transactions cost less per event (BenchmarkIndexFromCommits).
func (s *Server) openQuery(ctx context.Context) error {
	cfg := query.Config{Store: s.dir.Store, Batch: indexBatch, Settle: indexSettle, Logger: s.log.With("component", "query")}
	t := &queryTailer{done: make(chan struct{})}
	postgres := s.dir.Backend == datadir.StorePostgres
	shared := postgres && s.cfg.SharedQueryIndex()
	if !shared {
		w, r, err := query.OpenSQLite(filepath.Join(s.dir.Path, query.SQLiteFile))
		if err != nil {
			return err
		}
		cfg.DB, cfg.ReadDB, cfg.Dialect = w, r, query.SQLite
		t.dbs = []*sql.DB{r, w}
	} else {
		cfg.DB = s.dir.Store.DB()
		cfg.Dialect = query.DialectOf(cfg.DB)
	}
	ix, err := query.New(ctx, cfg)
	if err != nil {
		t.close()
		return err
	}
	if postgres && !shared {
		s.warnStaleSharedIndex(ctx)
	}
	t.ix = ix
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t.cancel = cancel
	go func() {
		defer close(t.done)
		ix.Run(rctx)
	}()
	s.query = t
	s.followers.add(ix.Follower())
	return nil
}

// warnStaleSharedIndex says when the store's database holds a shared
// query index that this replica, keeping its own, leaves behind: one an
// earlier release kept there, or replicas configured apart.
func (s *Server) warnStaleSharedIndex(ctx context.Context) {
	var shared bool
	err := s.dir.Store.DB().QueryRowContext(ctx, `SELECT to_regclass('query_meta') IS NOT NULL`).Scan(&shared)
	if err != nil {
		// Only a warning is at stake; the store's own checks report a
		// database that cannot answer.
		s.log.WarnContext(ctx, "query index: could not look for a shared one in the database", "error", err)
		return
	}
	if shared {
		s.log.WarnContext(ctx, "query index: this replica keeps its own in the data directory (query_index: local), "+
			"but the database holds a shared one, which it does not update; set query_index: shared to use that one, "+
			"or drop the query_* tables once no replica does")
	}
}

// closeQuery stops the tailer.
func (s *Server) closeQuery() error {
	if s.query == nil {
		return nil
	}
	s.query.cancel()
	<-s.query.done
	return s.query.close()
}

// QueryIndex returns the server's query index.
func (s *Server) QueryIndex() *query.Index { return s.query.ix }

// queryRoutes registers the event queries and reports, for auditors and
// admins.
func (s *Server) queryRoutes(mux *http.ServeMux, auditor func(http.Handler) http.Handler) {
	mux.Handle("GET /v1/events", auditor(http.HandlerFunc(s.listEvents)))
	mux.Handle("GET /v1/reports/approvals", auditor(http.HandlerFunc(s.whoApproved)))
	mux.Handle("GET /v1/reports/active", auditor(http.HandlerFunc(s.activeAt)))
	mux.Handle("GET /v1/reports/access", auditor(http.HandlerFunc(s.accessReport)))
	mux.Handle("GET /v1/reports/compliance", auditor(http.HandlerFunc(s.complianceReport)))
}

// queryTime reads an RFC 3339 query parameter; ok is false after an
// error answer.
func queryTime(w http.ResponseWriter, r *http.Request, name string) (time.Time, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, true
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || len(v) > 64 {
		writeError(w, refusal.Invalid, "invalid_request", name+" must be an RFC 3339 time")
		return time.Time{}, false
	}
	return t, true
}

// maxQueryParam bounds each query parameter.
const maxQueryParam = 1024

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k, v := range q {
		if len(v) > 1 || len(v[0]) > maxQueryParam {
			writeError(w, refusal.Invalid, "invalid_request", "parameter "+k+" is repeated or too long")
			return
		}
	}
	f := query.Filter{TaskID: q.Get("task_id"), Agent: q.Get("agent"), Principal: q.Get("principal"), Tool: q.Get("tool"),
		Resource: q.Get("resource"), Type: q.Get("type"), Decision: q.Get("decision"), After: q.Get("after")}
	var ok bool
	if f.From, ok = queryTime(w, r, "from"); !ok {
		return
	}
	if f.To, ok = queryTime(w, r, "to"); !ok {
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			writeError(w, refusal.Invalid, "invalid_request", "limit must be a number")
			return
		}
		f.Limit = n
	}
	p, err := s.query.ix.Events(r.Context(), f)
	if err != nil {
		s.queryFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) whoApproved(w http.ResponseWriter, r *http.Request) {
	res := r.URL.Query().Get("resource")
	if res == "" || len(res) > maxQueryParam {
		writeError(w, refusal.Invalid, "invalid_request", "resource is required (at most 1024 bytes; '*' matches any run of characters)")
		return
	}
	out, err := s.query.ix.WhoApproved(r.Context(), res, 0)
	if err != nil {
		s.queryFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"resource": res, "approvals": out})
}

func (s *Server) activeAt(w http.ResponseWriter, r *http.Request) {
	at, ok := queryTime(w, r, "at")
	if !ok {
		return
	}
	if at.IsZero() {
		writeError(w, refusal.Invalid, "invalid_request", "at is required: an RFC 3339 time")
		return
	}
	agent := r.URL.Query().Get("agent")
	if len(agent) > maxQueryParam {
		writeError(w, refusal.Invalid, "invalid_request", "agent is too long")
		return
	}
	out, err := s.query.ix.ActiveAt(r.Context(), at, agent)
	if err != nil {
		s.queryFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) accessReport(w http.ResponseWriter, r *http.Request) {
	var opts evidence.AccessOptions
	var ok bool
	if opts.From, ok = queryTime(w, r, "from"); !ok {
		return
	}
	if opts.To, ok = queryTime(w, r, "to"); !ok {
		return
	}
	opts.Agent = r.URL.Query().Get("agent")
	if d := r.URL.Query().Get("long_ttl"); d != "" {
		v, err := time.ParseDuration(d)
		if err != nil || v <= 0 {
			writeError(w, refusal.Invalid, "invalid_request", "long_ttl must be a positive duration such as 1h")
			return
		}
		opts.LongTTL = v
	}
	if n := r.URL.Query().Get("many_families"); n != "" {
		v, err := strconv.Atoi(n)
		if err != nil || v < 2 {
			writeError(w, refusal.Invalid, "invalid_request", "many_families must be a number of at least 2")
			return
		}
		opts.ManyFamilies = v
	}
	if !opts.From.IsZero() && !opts.To.IsZero() && opts.From.After(opts.To) {
		writeError(w, refusal.Invalid, "invalid_request", "from is after to")
		return
	}
	rep, err := evidence.Access(r.Context(), s.query.ix, opts)
	if err != nil {
		s.queryFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) queryFail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, query.ErrInvalid) {
		writeError(w, refusal.Invalid, "invalid_request", err.Error())
		return
	}
	s.fail(w, r, err)
}
