package task

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/credential"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/redact"
)

// Appender commits events durably and in order; *ledger.Ledger is one.
type Appender interface {
	AppendAll(ctx context.Context, events []ledger.Event) (uint64, error)
}

// Evaluator decides policy questions; *policy.Policy is one. (The task
// service itself is what enforcement points call their Decider:
// internal/enforce.)
type Evaluator interface {
	Evaluate(ctx context.Context, point policy.Point, in *policy.Input) policy.Decision
}

// Config configures a Service.
type Config struct {
	// Ledger records every change before it is applied.
	Ledger Appender
	// Eraser erases bodies (EraseBody, EraseUnheld), ordered with legal
	// holds; *ledger.Ledger is one. Without it, erasures are refused.
	Eraser Eraser
	// Store is the ledger's store, replayed at start and read by Trace.
	Store ledger.Store
	// Policy decides tasks and actions.
	Policy Evaluator
	// Environment is the runtime environment this server enforces for
	// (dev, staging, prod…); policy sees it as request.environment.
	Environment string
	// DigestKey keys the digests leaves hold in place of plain hashes of
	// bodies (mac.go): at least MinDigestKeyBytes, the same on every
	// replica and across restarts, never disclosed. The server takes
	// ledger.KeyPair.DigestKey.
	DigestKey []byte
	// Origin and Verifier check the latest checkpoint in Trace. When
	// Verifier is nil, Trace reports every event as unverified.
	Origin   string
	Verifier note.Verifier
	// DB holds the projection tables, in the store's database: SQLite's, or
	// PostgreSQL's when Store says so (a Dialect method answering
	// "postgres"). Nil keeps no tables.
	DB *sql.DB
	// AllowProjectionMismatch lets New start on tables that disagree with
	// the ledger: it logs each difference and rewrites the rows from the
	// ledger. Only for recovery, after the cause is understood
	// (`writ server --repair-projections`).
	AllowProjectionMismatch bool
	// SnapshotInterval is how many events the state applies between two
	// snapshots of it written to DB (snapshot.go), besides the one written
	// at Close; zero is DefaultSnapshotInterval, SnapshotAtClose the one at
	// Close only. A
	// start loads the latest that checks against the ledger and replays
	// only the events after it. Negative writes and loads none: every start
	// replays the whole ledger.
	SnapshotInterval int
	// ApprovalTTL is how long an approval request stays open (default 1h).
	ApprovalTTL time.Duration
	// SweepInterval is how often expired tasks and approvals are ended
	// (default 1s). Negative disables the sweeper (tests drive Sweep).
	SweepInterval time.Duration
	// OnRevoke, when set, is told each revoked credential's JTI after the
	// revocation is durable, so the credential layer can refuse it at once.
	OnRevoke func(jti string)
	// OnTaskEnded, when set, is told of each task that ended (completed,
	// expired or revoked) once that is durable, so that enforcement points
	// let go of what they hold for it. It must not block.
	OnTaskEnded func(taskID string)
	// OnApprovalRequested, when set, is told of each new approval request
	// (task or step-up) once it is durable, to notify approvers. It must not
	// block.
	OnApprovalRequested func(api.PendingApproval)
	// Shared, when set, coordinates this service with the other replicas
	// on the same store (replica.go, gate.go): it follows their events and
	// orders decisions across replicas. The ledger's OnCommit must call
	// Follower().Committed.
	Shared Coordinator
	// FollowInterval is the longest the service goes without reading other
	// replicas' events when no notification wakes it (default
	// DefaultFollowInterval). A revocation on another replica reaches this
	// one's credential layer within it; and before any decision the state
	// is caught up under the replicas' lock regardless.
	FollowInterval time.Duration
	// Redactor redacts arguments and outputs before they are stored
	// (default redact.Default(): the built-in keys and detectors).
	Redactor *redact.Engine
	// Issuer mints the task tokens Exchange issues; without it Exchange
	// fails.
	Issuer Issuer
	// CredentialTTL is the longest lifetime of a task token Exchange
	// issues (default credential.DefaultMaxTTL).
	CredentialTTL time.Duration
	// FindAction, when set, finds the events of an action the state no
	// longer holds (done.go), so that a result reported again long after
	// the first is refused as already recorded rather than as unknown.
	FindAction ActionFinder
	// Rejections, when set, decides which auth.rejected events are
	// recorded one by one (the server's abuse.Limiter); nil records all.
	Rejections Rejections
	Logger     *slog.Logger
	// Now is the clock; tests set it.
	Now func() time.Time
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Ledger == nil:
		return errors.New("task: no ledger")
	case c.Store == nil:
		return errors.New("task: no ledger store")
	case c.Policy == nil:
		return errors.New("task: no policy")
	case c.Environment == "":
		return errors.New("task: no environment")
	case len(c.DigestKey) < MinDigestKeyBytes:
		return fmt.Errorf("task: DigestKey must be at least %d bytes", MinDigestKeyBytes)
	case c.ApprovalTTL < 0:
		return errors.New("task: ApprovalTTL must not be negative")
	case c.CredentialTTL < 0:
		return errors.New("task: CredentialTTL must not be negative")
	}
	return nil
}

// Service runs tasks, approvals and authorizations over the ledger.
type Service struct {
	cfg Config
	log *slog.Logger
	// macs holds HMAC-SHA256 hashes keyed with cfg.DigestKey, reset, for
	// mac to reuse.
	macs sync.Pool

	// mu orders changes: task lifecycle changes hold it exclusively;
	// authorizations hold it shared, so they commit concurrently (group
	// commit) but never interleave with a task ending. With replicas it
	// also holds the database lock that orders them across replicas.
	mu gate
	// smu guards st and reserved.
	smu  sync.Mutex
	st   *State
	proj *projection
	// reserved holds step-ups an in-flight authorization is consuming.
	reserved map[string]bool
	// fresh coalesces the catch-ups decisions make with replicas (order.go).
	fresh freshener

	kick      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	// next is the first index the state has not applied (guarded by
	// smu): with replicas, the follower's position (replica.go), and
	// touched the tasks whose projection rows are to be written.
	next     uint64
	touched  map[string]bool
	projKick chan struct{}
	// follow feeds the state other replicas' events, with replicas.
	follow     *ledger.Follower
	stopFollow context.CancelFunc
	followDone chan struct{}
	// unlockProjection releases the projection lock while this replica
	// holds it; projectionHeld ends when it is lost.
	unlockProjection func()
	projectionHeld   context.Context
	// sinceSnap counts the events applied since the last snapshot
	// (guarded by smu); snapKick asks for one, snapDone closes when the
	// writer has stopped (snapwriter.go).
	sinceSnap int
	snapKick  chan struct{}
	snapDone  chan struct{}
	// fromSnapshot says the start loaded the state from a snapshot.
	fromSnapshot bool
}

// New replays the ledger into State, checks and catches up the projection
// tables, and starts the expiry sweeper. An event the state cannot apply is
// skipped and logged (SkippedEvents), never applied and never fatal. New
// fails, unless AllowProjectionMismatch, when a table row disagrees with
// the ledger.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ApprovalTTL == 0 {
		cfg.ApprovalTTL = DefaultApprovalTTL
	}
	if cfg.CredentialTTL == 0 {
		cfg.CredentialTTL = credential.DefaultMaxTTL
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FollowInterval <= 0 {
		cfg.FollowInterval = DefaultFollowInterval
	}
	if cfg.Redactor == nil {
		cfg.Redactor = redact.Default()
	}
	if cfg.SnapshotInterval == 0 {
		cfg.SnapshotInterval = DefaultSnapshotInterval
	}
	s := &Service{
		cfg: cfg, log: cfg.Logger, st: NewState(), reserved: map[string]bool{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		touched: map[string]bool{}, projKick: make(chan struct{}, 1), followDone: make(chan struct{}),
		snapKick: make(chan struct{}, 1), snapDone: make(chan struct{}),
	}
	s.mu.s = s
	s.mu.cond = sync.NewCond(&s.mu.mu)
	var wake <-chan struct{}
	var stopWatch func()
	if cfg.Shared != nil {
		// Watch before replaying, so nothing appended meanwhile is missed.
		wake, stopWatch = cfg.Shared.Watch()
	}
	if err := s.load(ctx); err != nil {
		if stopWatch != nil {
			stopWatch()
		}
		if s.unlockProjection != nil {
			s.unlockProjection()
		}
		return nil, err
	}
	if cfg.DB != nil && cfg.SnapshotInterval > 0 {
		if !s.fromSnapshot && s.sinceSnap >= cfg.SnapshotInterval {
			// No snapshot to build the next on: take one now, from the
			// state, before any decision can wait for it.
			s.snapshotNow(false)
		}
		go s.snapshots()
		s.smu.Lock()
		s.noteApplied(0)
		s.smu.Unlock()
	} else {
		close(s.snapDone)
	}
	if cfg.Shared != nil {
		if err := s.startFollowing(wake, stopWatch); err != nil {
			close(s.stop)
			<-s.snapDone
			stopWatch()
			if s.unlockProjection != nil {
				s.unlockProjection()
			}
			return nil, err
		}
		go s.tend()
		go s.mu.watchWaiters(s.stop)
		return s, nil
	}
	close(s.followDone)
	if cfg.SweepInterval > 0 {
		go s.sweeper()
	} else {
		close(s.done)
	}
	return s, nil
}

// load replays the ledger, from the event after the stored snapshot of the
// state when one checks against the ledger (snapwriter.go), from the first
// otherwise. With projection tables, events up to their projected_through
// index are applied first and the rows compared with the result; the rest
// are applied and written (crash recovery).
func (s *Service) load(ctx context.Context) error {
	var through int64 = -1
	useTables := s.cfg.DB != nil
	if useTables && s.cfg.Shared != nil {
		// One replica at a time writes the tables (replica.go); the
		// others leave them, and their check, to it.
		held, unlock, ok, err := s.cfg.Shared.TryLock(ctx, lockProjection)
		if err != nil {
			return err
		}
		useTables = ok
		s.unlockProjection, s.projectionHeld = unlock, held
	}
	if useTables {
		p, err := openProjection(ctx, s.cfg.DB, dialectOf(s.cfg.Store))
		if err != nil {
			return err
		}
		s.proj = p
		through = p.through
	}
	checked := false
	// after are the tasks of the events applied after the check: their
	// rows are the ones to write once the tables agreed with the rest.
	after := map[string]bool{}
	check := func() error {
		checked = true
		if s.proj == nil {
			return nil
		}
		diffs, err := s.proj.compare(ctx, s.st)
		if err != nil {
			return err
		}
		if len(diffs) == 0 {
			return nil
		}
		if !s.cfg.AllowProjectionMismatch {
			return &ProjectionMismatchError{Diffs: diffs}
		}
		for _, d := range diffs {
			s.log.WarnContext(ctx, "projection row disagrees with the ledger; rewriting it", "diff", d)
		}
		return nil
	}
	var start uint64
	if st, at, size := s.loadSnapshot(ctx, s.proj != nil, through); st != nil {
		// The bodies are read beside the check of the tables when it is
		// due before any event is applied (the tables are at the
		// snapshot's index): the check reads none of them.
		bodies := make(chan error, 1)
		go func() { bodies <- loadSnapshotBodies(ctx, s.cfg.Store, st) }()
		var checkErr error
		if int64(at) >= through {
			s.st = st
			checkErr = check()
		}
		if err := <-bodies; err != nil {
			s.snapshotNotUsed(ctx, err)
			s.st, checked = NewState(), false
		} else {
			if checkErr != nil {
				return checkErr
			}
			s.log.InfoContext(ctx, "task state loaded from its snapshot", "through", at, "bytes", size)
			s.st = st
			s.fromSnapshot = true
			start = at + 1
			s.next = start
			skipped, _ := st.Skipped()
			for i := range skipped {
				s.logSkipped(&skipped[i])
			}
		}
	}
	err := s.cfg.Store.ScanLeaves(ctx, start, func(index uint64, leaf []byte) error {
		if !checked && int64(index) > through {
			if err := check(); err != nil {
				return err
			}
		}
		e, err := ledger.ParseLeaf(index, leaf)
		if err != nil {
			return err
		}
		s.next = index + 1
		s.sinceSnap++
		if !Relevant(e.Event.Type) {
			return nil
		}
		if err := s.loadBodies(ctx, &e); err != nil {
			return err
		}
		if k := s.st.Replay(e); k != nil {
			s.logSkipped(k)
		}
		if checked && e.Event.TaskID != "" {
			after[e.Event.TaskID] = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replaying the ledger into task state: %w", err)
	}
	if _, n := s.st.Skipped(); n > 0 {
		s.log.ErrorContext(ctx, "the ledger holds events the task state cannot apply; they were skipped (see the log lines above and 'writ ledger verify')", "skipped", n)
	}
	if !checked {
		if err := check(); err != nil {
			return err
		}
	}
	if s.proj != nil {
		only := after
		if s.cfg.AllowProjectionMismatch {
			only = nil // every row, rewritten from the ledger
		}
		if err := s.proj.write(ctx, s.st, only, int64(s.next)-1); err != nil {
			return fmt.Errorf("writing projection tables: %w", err)
		}
	}
	return nil
}

// loadBodies reads the bodies State keeps (stateBodies). An erased body
// leaves the field empty.
func (s *Service) loadBodies(ctx context.Context, e *ledger.Entry) error {
	return ledger.ReadBodies(ctx, s.cfg.Store, e, stateBodies[e.Event.Type]...)
}

// Close stops the sweeper and, with replicas, the follower, and writes a
// last snapshot of the state when it applied events since the one before.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		if s.stopFollow != nil {
			s.stopFollow()
		}
	})
	<-s.done
	<-s.followDone
	<-s.snapDone
	return nil
}

// endings are the credentials revoked and the tasks ended by events just
// applied, which the hooks are told of.
type endings struct{ revoked, ended []string }

func (e *endings) note(ev ledger.Event) {
	switch ev.Type {
	case ledger.TypeCredentialRevoked:
		e.revoked = append(e.revoked, ev.JTI)
	case ledger.TypeTaskCompleted, ledger.TypeTaskExpired, ledger.TypeTaskRevoked:
		e.ended = append(e.ended, ev.TaskID)
	}
}

// tell tells the hooks (OnRevoke, OnTaskEnded) of e.
func (s *Service) tell(e endings) {
	if s.cfg.OnRevoke != nil {
		for _, jti := range e.revoked {
			s.cfg.OnRevoke(jti)
		}
	}
	if s.cfg.OnTaskEnded != nil {
		for _, id := range e.ended {
			s.cfg.OnTaskEnded(id)
		}
	}
}

// rows says whether a commit writes the projection rows of the tasks its
// events touch.
type rows bool

const (
	projectRows rows = true  // write the touched tasks' rows
	stateOnly   rows = false // apply to State only
)

// commit appends events in one transaction and applies them to State. The
// caller holds mu (exclusively when the events change a task's lifecycle
// or an approval). It writes the projection rows of the tasks touched when
// project is projectRows. Events' times must already be set.
func (s *Service) commit(ctx context.Context, events []ledger.Event, project rows) (uint64, error) {
	if s.cfg.Shared != nil {
		return s.commitShared(ctx, events)
	}
	// Once queued, the events are committed whether or not the caller
	// still waits: wait for the outcome and apply them, or the state would
	// miss them until a restart (a step-up used, yet usable again).
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	first, err := s.cfg.Ledger.AppendAll(context.WithoutCancel(ctx), events)
	if err != nil {
		return 0, err
	}
	s.smu.Lock()
	var applyErr error
	touched := map[string]bool{}
	for i, ev := range events {
		// The event is durable: the state skips it, as a replay at
		// restart does.
		if k := s.st.Replay(ledger.Entry{Index: first + uint64(i), Event: ev}); k != nil {
			if applyErr == nil {
				applyErr = fmt.Errorf("%w at ledger index %d: %s", ErrIncoherent, k.Index, k.Reason)
			}
			s.logSkipped(k)
			continue
		}
		touched[ev.TaskID] = true
	}
	s.next = max(s.next, first+uint64(len(events)))
	s.noteApplied(len(events))
	s.smu.Unlock()
	var ends endings
	var requested []api.PendingApproval
	for _, ev := range events {
		ends.note(ev)
		if ev.Type == ledger.TypeApprovalRequested && s.cfg.OnApprovalRequested != nil && applyErr == nil {
			var d event.ApprovalRequested
			if json.Unmarshal(ev.Data, &d) == nil {
				s.smu.Lock()
				if a, ok := s.st.approvals[d.ApprovalID]; ok {
					requested = append(requested, pendingView(a, s.st.tasks[a.TaskID]))
				}
				s.smu.Unlock()
			}
		}
	}
	for _, p := range requested {
		s.cfg.OnApprovalRequested(p)
	}
	s.tell(ends)
	if project == projectRows && s.proj != nil && applyErr == nil {
		s.smu.Lock()
		err := s.proj.write(ctx, s.st, touched, int64(first)+int64(len(events))-1)
		s.smu.Unlock()
		if err != nil {
			// The ledger holds the truth; the next start catches the
			// tables up from projected_through.
			s.log.ErrorContext(ctx, "writing projection rows failed", "err", err)
		}
	}
	if applyErr != nil {
		return first, fmt.Errorf("task state: %w", applyErr)
	}
	return first, nil
}

// commitShared is commit with replicas: only under the replicas' lock, and
// the state applies the events in index order, after whatever other
// replicas appended before them (replica.go). The projection tables are
// written by the replica that holds them, after the state applied them.
func (s *Service) commitShared(ctx context.Context, events []ledger.Event) (uint64, error) {
	if !s.mu.held() {
		return 0, errNotCoordinated
	}
	unlock, err := s.claim(ctx, events)
	if err != nil {
		return 0, err
	}
	defer unlock()
	// Once queued, the events are committed whether or not the caller
	// still waits; so wait for the outcome with the lock held, whatever
	// ctx does. Letting go at a cancel would let another replica's change
	// (a task completed) into the log before them, and they would no
	// longer follow from the events before them.
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	first, err := s.cfg.Ledger.AppendAll(context.WithoutCancel(ctx), events)
	if err != nil {
		return 0, err
	}
	// Applied whatever ctx does, as they were committed. Should that fail,
	// the follower applies them later; the caller hears of it.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockWait)
	err = s.follow.SyncTo(sctx, first+uint64(len(events)))
	cancel()
	if err != nil {
		return first, fmt.Errorf("task state: %w", err)
	}
	if s.cfg.OnApprovalRequested != nil {
		var requested []api.PendingApproval
		s.smu.Lock()
		for _, ev := range events {
			if ev.Type != ledger.TypeApprovalRequested {
				continue
			}
			var d event.ApprovalRequested
			if json.Unmarshal(ev.Data, &d) == nil {
				if a, ok := s.st.approvals[d.ApprovalID]; ok {
					requested = append(requested, pendingView(a, s.st.tasks[a.TaskID]))
				}
			}
		}
		s.smu.Unlock()
		for _, p := range requested {
			s.cfg.OnApprovalRequested(p)
		}
	}
	return first, nil
}

// now returns the clock's time in UTC, truncated to what a leaf records.
func (s *Service) now() time.Time { return s.cfg.Now().UTC() }
