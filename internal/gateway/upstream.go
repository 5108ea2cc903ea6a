package gateway

import (
	"context"
	"errors"
	"fmt"
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
)

// upstream is writ's client of one configured MCP server. It connects on
// first use, and again after the session fails: a stdio server that exits
// is restarted by the next call.
type upstream struct {
	name    string
	cfg     config.MCPServer
	timeout time.Duration
	getenv  func(string) string
	log     *slog.Logger

	mu     sync.Mutex
	closed bool // by Shutdown: no more connections
	cs     *mcp.ClientSession
	last   time.Time // last failed connect, for back-off
	err    error     // its error
}

// retryAfter is how long a failed connect is remembered before the next try.
const retryAfter = 500 * time.Millisecond

func newUpstream(name string, cfg config.MCPServer, getenv func(string) string, log *slog.Logger) *upstream {
	t := cfg.Timeout
	if t <= 0 {
		t = config.DefaultUpstreamTimeout
	}
	return &upstream{name: name, cfg: cfg, timeout: t, getenv: getenv, log: log}
}

// errUnavailable wraps every failure to reach an upstream.
var errUnavailable = errors.New("upstream unavailable")

// session returns the live session, connecting when there is none.
func (u *upstream) session(ctx context.Context) (*mcp.ClientSession, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.cs != nil {
		return u.cs, nil
	}
	if u.closed {
		return nil, fmt.Errorf("%w: %s: writ is shutting down", errUnavailable, u.name)
	}
	if u.err != nil && time.Since(u.last) < retryAfter {
		return nil, u.err
	}
	tr, err := u.transport()
	if err != nil {
		u.err, u.last = fmt.Errorf("%w: %s: %v", errUnavailable, u.name, err), time.Now()
		return nil, u.err
	}
	cctx, cancel := context.WithTimeout(context.Background(), u.timeout)
	defer cancel()
	// A fresh client for every connection: nothing negotiated with a
	// previous process or session carries over.
	client := mcp.NewClient(&mcp.Implementation{Name: "writ", Version: "1"}, nil)
	cs, err := client.Connect(cctx, tr, nil)
	if err != nil {
		u.err, u.last = fmt.Errorf("%w: %s did not complete the MCP handshake: %v", errUnavailable, u.name, u.scrub(err)), time.Now()
		return nil, u.err
	}
	u.cs, u.err = cs, nil
	go func() {
		cs.Wait()
		u.drop(cs)
	}()
	return cs, nil
}

// current returns the live session, or nil when there is none or a
// connection is being made.
func (u *upstream) current() *mcp.ClientSession {
	if !u.mu.TryLock() {
		return nil
	}
	defer u.mu.Unlock()
	return u.cs
}

// detach returns a context cancelled with ctx but carrying none of its
// values: the SDK keeps the agent side's protocol version in the request
// context, which must not leak into writ's own session with the upstream.
func detach(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	nctx, cancel := context.WithTimeout(context.Background(), timeout)
	stop := context.AfterFunc(ctx, cancel)
	return nctx, func() {
		stop()
		cancel()
	}
}

// drop forgets cs (after it failed) so that the next call reconnects.
func (u *upstream) drop(cs *mcp.ClientSession) {
	u.mu.Lock()
	if u.cs == cs {
		u.cs = nil
	}
	u.mu.Unlock()
	cs.Close()
}

func (u *upstream) close() error {
	u.mu.Lock()
	cs := u.cs
	u.cs, u.closed = nil, true
	u.mu.Unlock()
	if cs == nil {
		return nil
	}
	err := cs.Close()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		// A stdio server that did not exit when its input closed was
		// terminated: that is how it stops.
		u.log.Debug("stdio upstream stopped", "exit", ee.String())
		return nil
	}
	return err
}

// transport builds the connection to the upstream, expanding secret
// references in its headers or environment now.
func (u *upstream) transport() (mcp.Transport, error) {
	if u.cfg.URL != "" {
		h := http.Header{}
		for k, v := range u.cfg.Headers {
			x, err := config.ExpandSecrets(v, u.getenv)
			if err != nil {
				return nil, fmt.Errorf("header %s: %v", k, err)
			}
			h.Set(k, x)
		}
		return &mcp.StreamableClientTransport{
			Endpoint:             u.cfg.URL,
			HTTPClient:           &http.Client{Transport: &headerTransport{base: upstreamTransport, h: h}},
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

// upstreamTransport carries calls to HTTP upstreams. Every agent's calls
// to one upstream share writ's session with it, so it keeps as many idle
// connections per upstream as there are calls in flight, where Go's
// default keeps two and opens a new connection for every other call.
var upstreamTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	return t
}()

// headerTransport sets writ's configured headers on every upstream request.
type headerTransport struct {
	base http.RoundTripper
	h    http.Header
}

func (t *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.h {
		r.Header[k] = v
	}
	return t.base.RoundTrip(r)
}

// logWriter sends a stdio server's stderr to the operational log (at
// debug level), with the secrets writ gave the server blanked out should
// the server print them.
type logWriter struct {
	log     *slog.Logger
	secrets []string
}

func (w *logWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		for _, s := range w.secrets {
			line = strings.ReplaceAll(line, s, "[redacted]")
		}
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
