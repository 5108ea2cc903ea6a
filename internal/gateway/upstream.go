package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/redact"
	"github.com/writhq/writ/internal/tracing"
	"github.com/writhq/writ/internal/version"
)

// upstream is writ's client of one configured MCP server. With sessions:
// task (the default) it holds a session for each task that calls the
// server, opened on the task's first call and closed when the task ends,
// when it has been idle for the server's idle_timeout, or to make room
// under max_sessions; with sessions: shared, one session carries every
// task's calls. A session that
// fails is opened again by the next call: a stdio server that exits is
// restarted.
type upstream struct {
	name    string
	cfg     config.MCPServer
	timeout time.Duration
	perTask bool
	idle    time.Duration
	max     int
	getenv  func(string) string
	log     *slog.Logger

	mu           sync.Mutex
	closed       bool             // by Shutdown: no more connections
	conns        map[string]*conn // by task ID; "" for the shared session
	spare        *conn            // opened at start, for the first task
	instructions string           // the upstream's, from its latest handshake
	last         time.Time        // last failed connect, for back-off
	err          error            // its error
	stop         chan struct{}    // ends the idle reaper
	reapOnce     sync.Once        // starts it, with the first task session
	room         chan struct{}    // closed when a session may have come free
	closingN     int              // task sessions being closed, which still count
	closing      sync.WaitGroup   // sessions being closed in the background

	tlsTr *http.Transport // for an upstream with TLS settings, under mu

	// progress holds the relays of the upstream's progress notifications:
	// writ's progress token of a call in flight → *progressRelay.
	progress sync.Map
}

// conn is one session with the upstream, or the attempt to open it.
type conn struct {
	ready chan struct{} // closed when the connect has finished
	cs    *mcp.ClientSession
	err   error     // why the connect failed
	busy  int       // calls in flight, under upstream.mu
	used  time.Time // when the last call ended, under upstream.mu
	// drained, when set (a task's end is closing the session while calls
	// are in flight on it), is closed when the last of them has ended.
	drained chan struct{}
	// cancelled counts the calls on the session cancelled by a task's
	// end, each of which the SDK follows with notifications/cancelled;
	// told counts those sent (over HTTP, where writ sees them go), under
	// upstream.mu, and a value on toldCh wakes whoever waits for them.
	cancelled, told int
	toldCh          chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// retryAfter is how long a failed connect is remembered before the next try.
const retryAfter = 500 * time.Millisecond

func newUpstream(name string, cfg config.MCPServer, getenv func(string) string, log *slog.Logger) *upstream {
	u := &upstream{name: name, cfg: cfg, timeout: cfg.Timeout, perTask: cfg.Sessions != config.SessionsShared,
		idle: cfg.IdleTimeout, max: cfg.MaxSessions, getenv: getenv, log: log,
		conns: map[string]*conn{}, stop: make(chan struct{})}
	if u.timeout <= 0 {
		u.timeout = config.DefaultUpstreamTimeout
	}
	if u.idle <= 0 {
		u.idle = config.DefaultSessionIdleTimeout
	}
	if u.max <= 0 {
		u.max = config.DefaultMaxSessions
		if cfg.URL == "" {
			u.max = config.DefaultMaxProcesses
		}
	}
	return u
}

// errUnavailable wraps every failure to reach an upstream.
var errUnavailable = errors.New("upstream unavailable")

// start opens the first session: the shared one, or a spare that the first
// task to call takes over (and that validates the configuration at start).
// It returns when the connect has finished.
func (u *upstream) start() error {
	u.mu.Lock()
	if u.closed || u.spare != nil || len(u.conns) > 0 {
		u.mu.Unlock()
		return nil
	}
	c := u.openLocked()
	if u.perTask {
		u.spare = c
	} else {
		u.conns[""] = c
	}
	u.mu.Unlock()
	<-c.ready
	return c.err
}

// acquire returns the session of task's calls (the shared one, with
// sessions: shared), opening it if need be. When max_sessions are open and
// every one has a call in flight, it waits for one to come free, for at
// most wait. The caller releases the session when its call is over.
func (u *upstream) acquire(ctx context.Context, task string, wait time.Duration) (*conn, error) {
	key := ""
	if u.perTask {
		key = task
	}
	var timeout <-chan time.Time
	u.mu.Lock()
	var c *conn
	for c == nil {
		if u.closed {
			u.mu.Unlock()
			return nil, fmt.Errorf("%w: %s: writ is shutting down", errUnavailable, u.name)
		}
		if c = u.conns[key]; c != nil {
			break
		}
		if u.err != nil && time.Since(u.last) < retryAfter {
			err := u.err
			u.mu.Unlock()
			return nil, err
		}
		switch {
		case u.perTask && u.spare != nil:
			c, u.spare = u.spare, nil
		case u.perTask && len(u.conns)+u.closingN >= u.max:
			// Sessions still closing count: room comes when one has
			// closed. Close the one idle longest, if any is idle.
			u.evictLocked()
			room := u.roomLocked()
			u.mu.Unlock()
			if timeout == nil {
				t := time.NewTimer(wait)
				defer t.Stop()
				timeout = t.C
			}
			select {
			case <-room:
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-timeout:
				return nil, fmt.Errorf("%w: %s: all %d sessions (max_sessions) stayed in use for %s", errUnavailable, u.name, u.max, wait)
			}
			u.mu.Lock()
			continue
		default:
			c = u.openLocked()
		}
		u.conns[key] = c
	}
	c.busy++
	u.mu.Unlock()
	select {
	case <-c.ready:
	case <-ctx.Done():
		// The connect goes on, for this task's next call.
		u.release(c)
		return nil, ctx.Err()
	}
	if c.err != nil {
		u.release(c)
		return nil, c.err
	}
	return c, nil
}

// release ends a call on c.
func (u *upstream) release(c *conn) {
	u.mu.Lock()
	c.busy--
	c.used = time.Now()
	if c.busy == 0 {
		u.freedLocked()
		if c.drained != nil {
			close(c.drained)
			c.drained = nil
		}
	}
	u.mu.Unlock()
}

// cancelledCall notes that a call on c was cancelled by its task's end.
func (u *upstream) cancelledCall(c *conn) {
	u.mu.Lock()
	c.cancelled++
	u.mu.Unlock()
}

// toldCancelled notes that notifications/cancelled went out on c.
func (u *upstream) toldCancelled(c *conn) {
	u.mu.Lock()
	c.told++
	u.mu.Unlock()
	select {
	case c.toldCh <- struct{}{}:
	default:
	}
}

// cancelNotifyWait bounds how long a session closing for a task's end
// waits for the SDK to send the upstream notifications/cancelled for the
// calls it cancelled (the SDK gives up sending one after 5s).
const cancelNotifyWait = 5 * time.Second

// awaitCancelNotices waits until the upstream has been told of every call
// on c cancelled by its task's end, so that closing the session does not
// cut the notices off. Only over HTTP does writ see them go; a stdio
// server is stopped when the session closes.
func (u *upstream) awaitCancelNotices(c *conn) {
	if u.cfg.URL == "" {
		return
	}
	t := time.NewTimer(cancelNotifyWait)
	defer t.Stop()
	for {
		u.mu.Lock()
		done := c.told >= c.cancelled
		u.mu.Unlock()
		if done {
			return
		}
		select {
		case <-c.toldCh:
		case <-t.C:
			return
		}
	}
}

// roomLocked returns a channel closed when a session may have come free.
func (u *upstream) roomLocked() <-chan struct{} {
	if u.room == nil {
		u.room = make(chan struct{})
	}
	return u.room
}

// freedLocked wakes the calls waiting for room.
func (u *upstream) freedLocked() {
	if u.room != nil {
		close(u.room)
		u.room = nil
	}
}

// openLocked starts connecting a new session in the background.
func (u *upstream) openLocked() *conn {
	c := &conn{ready: make(chan struct{}), used: time.Now(), toldCh: make(chan struct{}, 1)}
	go u.connect(c)
	if u.perTask {
		u.reapOnce.Do(func() { go u.reap() })
	}
	return c
}

func (u *upstream) connect(c *conn) {
	defer close(c.ready)
	tr, err := u.transport(c)
	if err != nil {
		u.failed(c, fmt.Errorf("%w: %s: %v", errUnavailable, u.name, err))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), u.timeout)
	defer cancel()
	// A fresh client for every connection: nothing negotiated with a
	// previous process or session carries over.
	client := mcp.NewClient(&mcp.Implementation{Name: "writ", Version: version.String()},
		&mcp.ClientOptions{ProgressNotificationHandler: u.relayProgress,
			// No sampling, elicitation or roots list changes: writ relays
			// none of them (and has no roots of its own to list).
			Capabilities: &mcp.ClientCapabilities{}})
	cs, err := client.Connect(ctx, tr, nil)
	if err != nil {
		u.failed(c, fmt.Errorf("%w: %s did not complete the MCP handshake: %v", errUnavailable, u.name, u.scrub(err)))
		return
	}
	u.mu.Lock()
	c.cs = cs
	u.err = nil
	if r := cs.InitializeResult(); r != nil {
		u.instructions = r.Instructions
	}
	closed := u.closed
	u.mu.Unlock()
	if closed {
		// Shutdown came while connecting.
		u.closeConn(c)
		return
	}
	go func() {
		cs.Wait()
		u.drop(c)
	}()
}

// failed records a failed connect and forgets c, so that a later call
// (after the back-off) tries again.
func (u *upstream) failed(c *conn, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	c.err = err
	u.err, u.last = err, time.Now()
	u.forgetLocked(c)
}

func (u *upstream) forgetLocked(c *conn) {
	if u.spare == c {
		u.spare = nil
	}
	for k, x := range u.conns {
		if x == c {
			delete(u.conns, k)
			u.freedLocked()
		}
	}
}

// drop forgets c (after it failed) so that the next call reconnects, and
// closes it.
func (u *upstream) drop(c *conn) {
	u.mu.Lock()
	u.forgetLocked(c)
	u.mu.Unlock()
	u.closeConn(c)
}

// evictLocked starts closing the task session idle longest, to make room
// for another; when every session has a call in flight, it closes none.
func (u *upstream) evictLocked() {
	var key string
	var oldest *conn
	for k, c := range u.conns {
		if c.busy == 0 && c.cs != nil && (oldest == nil || c.used.Before(oldest.used)) {
			key, oldest = k, c
		}
	}
	if oldest != nil {
		delete(u.conns, key)
		u.closeLater(oldest)
	}
}

// endTask closes the session of a task that has ended, once the calls on
// it (which the task's end cancelled) have ended and the upstream has
// been told of them.
func (u *upstream) endTask(task string) {
	if !u.perTask {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if c := u.conns[task]; c != nil && !u.closed {
		delete(u.conns, task)
		if c.busy > 0 && c.drained == nil {
			c.drained = make(chan struct{})
		}
		u.closeLater(c)
	}
}

// reap closes task sessions (and the spare) idle for longer than the
// idle timeout, until the upstream is shut down.
func (u *upstream) reap() {
	t := time.NewTicker(min(max(u.idle/4, 10*time.Millisecond), time.Minute))
	defer t.Stop()
	for {
		select {
		case <-u.stop:
			return
		case <-t.C:
		}
		u.mu.Lock()
		idle := func(c *conn) bool { return c.busy == 0 && c.cs != nil && time.Since(c.used) >= u.idle }
		for k, c := range u.conns {
			if idle(c) {
				delete(u.conns, k)
				u.closeLater(c)
			}
		}
		if u.spare != nil && idle(u.spare) {
			u.closeLater(u.spare)
			u.spare = nil
		}
		u.mu.Unlock()
	}
}

// closeLater closes c in the background (a stdio server may take a moment
// to stop, and the caller holds the lock). Until it has closed, it counts
// against max_sessions.
func (u *upstream) closeLater(c *conn) {
	u.closing.Add(1)
	u.closingN++
	drained := c.drained
	go func() {
		defer u.closing.Done()
		// A session still connecting is closed once it is up; one with
		// calls in flight (cancelled by its task's end), once they are
		// over and the upstream has been told.
		<-c.ready
		if drained != nil {
			<-drained
		}
		// A call cancelled by the task's end may have ended before the
		// session was taken for closing: its notice is waited for too.
		u.awaitCancelNotices(c)
		u.closeConn(c)
		u.mu.Lock()
		u.closingN--
		u.freedLocked()
		u.mu.Unlock()
	}()
}

// closeConn closes c's session; a stdio server that did not exit when its
// input closed was terminated, which is how it stops.
func (u *upstream) closeConn(c *conn) error {
	u.mu.Lock()
	cs := c.cs
	u.mu.Unlock()
	if cs == nil {
		return nil
	}
	c.closeOnce.Do(func() {
		err := cs.Close()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			u.log.Debug("stdio upstream stopped", "exit", ee.String())
			err = nil
		}
		c.closeErr = err
	})
	return c.closeErr
}

// instructionsText is the upstream's instructions for the agent, from the
// latest handshake writ made with it ("" before the first).
func (u *upstream) instructionsText() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.instructions
}

// detach returns a context cancelled with ctx but carrying none of its
// values: the SDK keeps the agent side's protocol version in the request
// context, which must not leak into writ's own session with the upstream.
func detach(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	// The call belongs to the request's trace (its HTTP request carries
	// traceparent), if not to its cancellation.
	nctx, cancel := context.WithTimeout(tracing.WithSpanOf(context.Background(), ctx), timeout)
	stop := context.AfterFunc(ctx, cancel)
	return nctx, func() {
		stop()
		cancel()
	}
}

// close stops the upstream: every session is closed, stdio servers stop.
func (u *upstream) close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	close(u.stop)
	conns := make([]*conn, 0, len(u.conns)+1)
	for _, c := range u.conns {
		conns = append(conns, c)
	}
	if u.spare != nil {
		conns = append(conns, u.spare)
	}
	clear(u.conns)
	u.spare = nil
	u.mu.Unlock()
	var errs []error
	for _, c := range conns {
		<-c.ready
		errs = append(errs, u.closeConn(c))
	}
	u.closing.Wait()
	u.mu.Lock()
	tr := u.tlsTr
	u.mu.Unlock()
	if tr != nil {
		tr.CloseIdleConnections()
	}
	return errors.Join(errs...)
}

// transport builds the connection to the upstream for c, expanding secret
// references in its headers or environment now.
func (u *upstream) transport(c *conn) (mcp.Transport, error) {
	if u.cfg.URL != "" {
		h := http.Header{}
		for k, v := range u.cfg.Headers {
			x, err := config.ExpandSecrets(v, u.getenv)
			if err != nil {
				return nil, fmt.Errorf("header %s: %v", k, err)
			}
			h.Set(k, x)
		}
		base, err := u.httpTransport()
		if err != nil {
			return nil, err
		}
		return &mcp.StreamableClientTransport{
			Endpoint:             u.cfg.URL,
			HTTPClient:           &http.Client{Transport: &headerTransport{base: base, h: h, told: func() { u.toldCancelled(c) }}},
			MaxRetries:           -1,
			DisableStandaloneSSE: true,
		}, nil
	}
	cmd := exec.Command(u.cfg.Command[0], u.cfg.Command[1:]...)
	var secrets []string
	// The child gets a minimal environment, not writ's: only what it needs
	// to run, and what the configuration gives it.
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG", "USER", "NODE_PATH"} {
		if v := os.Getenv(k); v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	for k, v := range u.cfg.Env {
		x, err := config.ExpandSecrets(v, u.getenv)
		if err != nil {
			return nil, fmt.Errorf("env %s: %v", k, err)
		}
		cmd.Env = append(cmd.Env, k+"="+x)
		if x != v && len(x) >= 4 {
			secrets = append(secrets, x)
		}
	}
	cmd.Stderr = &logWriter{log: u.log, secrets: secrets}
	return &mcp.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}, nil
}

// upstreamTransport carries calls to HTTP upstreams. It keeps as many
// idle connections per upstream as there are calls in flight, where Go's
// default keeps two and opens a new connection for every other call.
var upstreamTransport = newUpstreamTransport()

func newUpstreamTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	return t
}

// httpTransport is what carries calls to the upstream: the shared
// transport, or, for an upstream with TLS settings, one of its own, made
// at its first connection (its client certificate is read again when its
// files change).
func (u *upstream) httpTransport() (http.RoundTripper, error) {
	if u.cfg.TLS == (config.UpstreamTLS{}) {
		return upstreamTransport, nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.tlsTr == nil {
		tc, err := u.cfg.TLS.ClientConfig()
		if err != nil {
			return nil, err
		}
		u.tlsTr = newUpstreamTransport()
		u.tlsTr.TLSClientConfig = tc
	}
	return u.tlsTr, nil
}

// headerTransport sets writ's configured headers on every upstream
// request, and calls told when a notifications/cancelled has been sent.
type headerTransport struct {
	base http.RoundTripper
	h    http.Header
	told func()
}

func (t *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.h {
		r.Header[k] = v
	}
	tracing.Inject(r.Context(), r.Header)
	cancel := isCancelNotice(r)
	resp, err := t.base.RoundTrip(r)
	if cancel && t.told != nil {
		t.told()
	}
	return resp, err
}

// isCancelNotice reports whether r posts a notifications/cancelled: the
// SDK sends one per message, and names the method in Mcp-Method from
// 2026-07-28 on; before that the body says.
func isCancelNotice(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	if m := r.Header.Get("Mcp-Method"); m != "" {
		return m == "notifications/cancelled"
	}
	if r.GetBody == nil || r.ContentLength > 4096 {
		return false
	}
	body, err := r.GetBody()
	if err != nil {
		return false
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, 4096))
	// Every call goes through here: most are not a notice, and say so
	// without being decoded (a notice's method holds "cancelled" however
	// its slash is written).
	if err != nil || !bytes.Contains(b, []byte("cancelled")) {
		return false
	}
	var msg struct {
		Method string `json:"method"`
	}
	return json.Unmarshal(b, &msg) == nil && msg.Method == "notifications/cancelled"
}

// logWriter sends a stdio server's stderr to the operational log (at
// debug level), with the secrets writ gave the server blanked out should
// the server print them, and any credential redact recognizes (a server
// may log the arguments or results it handles).
type logWriter struct {
	log     *slog.Logger
	secrets []string
}

func (w *logWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		for _, s := range w.secrets {
			line = strings.ReplaceAll(line, s, redact.Replacement)
		}
		line = redact.Text(line)
		if line != "" {
			w.log.Debug("upstream stderr", "line", line)
		}
	}
	return len(b), nil
}

// scrub keeps an upstream error's text short and on one line, and puts
// the server's name where its address was: agents learn what failed, not
// where writ's upstreams live.
func (u *upstream) scrub(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if u.cfg.URL != "" {
		s = strings.ReplaceAll(s, u.cfg.URL, "<"+u.name+">")
		if pu, perr := url.Parse(u.cfg.URL); perr == nil && pu.Host != "" {
			s = strings.ReplaceAll(s, pu.Host, "<"+u.name+">")
		}
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
