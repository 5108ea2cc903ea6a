package witness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/internal/ledger"
)

// Witness is one configured witness.
type Witness struct {
	// URL is its submission prefix, ending in "/".
	URL string
	Key *Key
}

// Locker takes a named lock shared by the processes of one store, when
// several share it (store/postgres): one of them at a time runs the loop.
// held ends when the lock is released or lost.
type Locker interface {
	TryLock(ctx context.Context, name string) (held context.Context, unlock func(), ok bool, err error)
}

// LockName is the Locker lock the loop holds while it runs.
const LockName = "witness"

// Defaults of a Config.
const (
	DefaultInterval = time.Second
	// finalRoundTimeout bounds the round Close runs for the checkpoint
	// signed at shutdown.
	finalRoundTimeout = 5 * time.Second
	// lockRetry is how many intervals a replica that does not run the
	// loop waits before it tries the lock again.
	lockRetry = 5
)

// Config configures a Loop.
type Config struct {
	Witnesses []Witness
	// Quorum is how many witnesses' cosignatures a checkpoint needs to be
	// served as witnessed. Default: all of them.
	Quorum int
	// Interval is the least time between two submissions to one witness.
	// Default 1s.
	Interval time.Duration
	// MaxBackoff bounds the wait before a failing witness is tried again;
	// the wait doubles from Interval after each failure. Default 30
	// intervals.
	MaxBackoff time.Duration
	// Timeout bounds one add-checkpoint exchange. Default DefaultTimeout.
	Timeout time.Duration
	// Log is the ledger's store (the latest checkpoint, the tiles its
	// proofs come from); Store keeps cosignatures and witness states.
	Log   ledger.Store
	Store Store
	// Verifier is the log's checkpoint verifier; its name is the origin.
	Verifier note.Verifier
	// Recorder records refusals as witness.refused events.
	Recorder ledger.Recorder
	// Locker, when set, lets one process of those sharing the store run
	// the loop at a time; Watch, when set, wakes the loop when another
	// appends.
	Locker Locker
	Watch  func() (<-chan struct{}, func())
	HTTP   *http.Client
	Logger *slog.Logger
	Now    func() time.Time
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case len(c.Witnesses) == 0:
		return errors.New("witness: no witnesses")
	case c.Quorum < 1 || c.Quorum > len(c.Witnesses):
		return fmt.Errorf("witness: quorum %d: want 1 to %d", c.Quorum, len(c.Witnesses))
	case c.Interval <= 0, c.MaxBackoff < c.Interval, c.Timeout <= 0:
		return errors.New("witness: interval, backoff and timeout must be positive")
	case c.Log == nil || c.Store == nil || c.Verifier == nil || c.Recorder == nil:
		return errors.New("witness: no log, store, verifier or recorder")
	}
	seen := map[string]bool{}
	for _, w := range c.Witnesses {
		if w.Key == nil || w.URL == "" {
			return errors.New("witness: a witness without a key or a URL")
		}
		if seen[w.Key.String()] {
			return fmt.Errorf("witness: %s is listed twice", w.Key)
		}
		seen[w.Key.String()] = true
	}
	return nil
}

// Loop submits the ledger's checkpoints to the witnesses, off the request
// path: nothing that appends ever waits for it, and a witness that is down
// or slow only delays its own cosignatures.
//
// It runs in rounds, at most one per Interval: a round takes the latest
// checkpoint and submits that same checkpoint to every witness that has
// not cosigned it and is not busy, backing off or held, so that the
// witnesses' cosignatures meet on one checkpoint even under load. A
// witness's refusal holds it: nothing more is sent to it until the loop
// starts again (the operator's restart, once the cause is understood).
type Loop struct {
	cfg    Config
	origin string
	log    *slog.Logger
	kick   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	flight sync.WaitGroup
	rec    sync.Mutex // serializes recordPending

	started atomic.Bool

	mu        sync.Mutex
	peers     []*peer
	lastRound time.Time
	active    bool   // this process runs the loop (holds the lock)
	seen      uint64 // size of the latest checkpoint a round considered
}

// peer is one witness as the loop sees it. Its fields are guarded by
// Loop.mu.
type peer struct {
	w       Witness
	client  *Client
	state   State
	busy    bool
	held    bool
	next    time.Time // not before (backoff)
	backoff time.Duration
}

// New prepares a loop; Start runs it.
func New(cfg Config) (*Loop, error) {
	if cfg.Quorum == 0 {
		cfg.Quorum = len(cfg.Witnesses)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 30 * cfg.Interval
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.HTTP == nil {
		// A witness answers add-checkpoint itself: a redirect is an
		// answer to retry later, not a place to post the checkpoint.
		cfg.HTTP = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Loop{cfg: cfg, origin: cfg.Verifier.Name(), log: cfg.Logger,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	for _, w := range cfg.Witnesses {
		l.peers = append(l.peers, &peer{w: w, client: &Client{URL: w.URL, Key: w.Key, HTTP: cfg.HTTP},
			state: State{Key: w.Key.String(), URL: w.URL}})
	}
	return l, nil
}

// Keys returns the configured witnesses' verifier keys.
func (l *Loop) Keys() []string {
	out := make([]string, len(l.cfg.Witnesses))
	for i, w := range l.cfg.Witnesses {
		out[i] = w.Key.String()
	}
	return out
}

// Quorum returns the number of cosignatures a checkpoint needs.
func (l *Loop) Quorum() int { return l.cfg.Quorum }

// Notify tells the loop that the ledger grew. It never blocks.
func (l *Loop) Notify() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Start runs the loop until Close.
func (l *Loop) Start() {
	if l.started.CompareAndSwap(false, true) {
		go l.run()
	}
}

// Close stops the loop. A process that ran it first submits the latest
// checkpoint (the one the ledger signs when it closes) in one last round,
// within ctx and a few seconds, and waits for submissions in flight.
func (l *Loop) Close(ctx context.Context) error {
	if !l.started.Load() {
		return nil
	}
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// InFlight returns the keys of the witnesses a submission is on its way to.
func (l *Loop) InFlight() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, p := range l.peers {
		if p.busy {
			out = append(out, p.state.Key)
		}
	}
	return out
}

// Seen returns the size of the latest checkpoint the loop considered for
// submission.
func (l *Loop) Seen() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen
}

// Active reports whether this process runs the loop (with replicas, one
// does at a time).
func (l *Loop) Active() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active
}

func (l *Loop) run() {
	defer close(l.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-l.stop
		cancel()
	}()
	var wake <-chan struct{}
	if l.cfg.Watch != nil {
		ch, stopWatch := l.cfg.Watch()
		defer stopWatch()
		wake = ch
	}
	var unlock func()
	var heldCtx context.Context // the lock's, while the loop holds it
	var lost <-chan struct{}
	defer func() {
		if unlock != nil {
			unlock()
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var nextTry time.Time // when a replica not running the loop tries the lock again
	for {
		select {
		case <-l.stop:
			if l.Active() {
				l.finalRound()
			}
			l.flight.Wait()
			return
		case <-lost:
			// Another replica may run the loop already: stop, and try
			// the lock again at the next look.
			l.log.Warn("witness loop stopped: the replicas' witness lock was lost", "err", context.Cause(heldCtx))
			l.flight.Wait()
			l.mu.Lock()
			l.active = false
			l.mu.Unlock()
			unlock()
			unlock, lost = nil, nil
			continue
		case <-timer.C:
		case <-l.kick:
		case <-wake:
		}
		if l.cfg.Locker != nil && unlock == nil {
			if time.Now().Before(nextTry) {
				continue // another replica runs the loop; the timer says when to look again
			}
			held, u, ok, err := l.cfg.Locker.TryLock(ctx, LockName)
			switch {
			case err != nil && ctx.Err() == nil:
				l.log.Warn("witness loop: cannot take the replicas' witness lock; trying again", "err", err)
			case ok:
				unlock, lost, heldCtx = u, held.Done(), held
			}
			if unlock == nil {
				// Another replica runs the loop; look again later, not at
				// every append.
				nextTry = time.Now().Add(lockRetry * l.cfg.Interval)
				timer.Reset(lockRetry * l.cfg.Interval)
				continue
			}
		}
		if !l.Active() {
			if err := l.load(ctx); err != nil {
				if ctx.Err() == nil {
					l.log.Error("witness loop: cannot read the witnesses' state from the store; trying again", "err", err)
				}
				timer.Reset(l.cfg.Interval)
				continue
			}
		}
		wait := l.tick(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// load reads the witnesses' stored states, taking up where the last
// process to run the loop left off. Holds are not kept: starting the loop
// again is the operator's action that lets a held witness be tried once
// more. Refusals whose event was not recorded yet are recorded now.
func (l *Loop) load(ctx context.Context) error {
	states, err := l.cfg.Store.WitnessStates(ctx)
	if err != nil {
		return err
	}
	byKey := map[string]State{}
	for _, st := range states {
		byKey[st.Key] = st
	}
	l.mu.Lock()
	for _, p := range l.peers {
		if st, ok := byKey[p.state.Key]; ok {
			st.URL = p.w.URL
			p.state = st
		}
		p.held, p.next, p.backoff = false, time.Time{}, 0
	}
	l.active = true
	l.mu.Unlock()
	l.recordPending(ctx)
	return nil
}

// tick runs a round when one is due and returns how long to wait before
// looking again.
func (l *Loop) tick(ctx context.Context) time.Duration {
	now := l.cfg.Now()
	l.mu.Lock()
	due := l.lastRound.Add(l.cfg.Interval)
	l.mu.Unlock()
	if now.Before(due) {
		return due.Sub(now)
	}
	l.recordPending(ctx)
	stored, err := l.cfg.Log.LatestCheckpoint(ctx)
	if errors.Is(err, ledger.ErrNotFound) {
		return l.cfg.Interval
	}
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("witness loop: cannot read the latest checkpoint; trying again", "err", err)
		}
		return l.cfg.Interval
	}
	if _, err := ledger.OpenCheckpoint(stored.Note, l.origin, l.cfg.Verifier); err != nil {
		l.log.Error("witness loop: the latest checkpoint does not verify; not submitting it", "err", err, "size", stored.Size)
		return l.cfg.Interval
	}
	l.round(ctx, stored)
	return l.cfg.Interval
}

// round submits the checkpoint to every witness that needs it and is
// free to take it.
func (l *Loop) round(ctx context.Context, cp ledger.StoredCheckpoint) {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = cp.Size
	sent := false
	for _, p := range l.peers {
		if p.busy || p.held || now.Before(p.next) || p.state.Size == cp.Size {
			continue
		}
		p.busy, sent = true, true
		p.next = now.Add(l.cfg.Interval)
		old := p.state.Size
		l.flight.Add(1)
		go func() {
			defer l.flight.Done()
			l.submit(ctx, p, old, cp)
		}()
	}
	if sent {
		l.lastRound = now
	}
}

// finalRound submits the latest checkpoint to the witnesses that have not
// cosigned it, once submissions in flight are back.
func (l *Loop) finalRound() {
	l.flight.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), finalRoundTimeout)
	defer cancel()
	stored, err := l.cfg.Log.LatestCheckpoint(ctx)
	if err != nil {
		return
	}
	if _, err := ledger.OpenCheckpoint(stored.Note, l.origin, l.cfg.Verifier); err != nil {
		return
	}
	l.mu.Lock()
	for _, p := range l.peers {
		p.next = time.Time{} // the interval gives way to the last round
	}
	l.mu.Unlock()
	l.round(ctx, stored)
	l.flight.Wait()
}
