// Package gateway is writ's MCP gateway: to an agent it is an MCP server at
// /mcp/<server>, to each configured upstream an MCP client. Every tool call,
// resource read and prompt get is authorized by the task service before it
// is forwarded, and its result recorded after; tool listings are filtered
// by policy. The agent's task token stays with writ: upstreams see only the
// credentials writ's configuration gives them.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/internal/abuse"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/enforce"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/tracing"
	"github.com/writhq/writ/internal/version"
)

// Config configures a Gateway.
type Config struct {
	Servers map[string]config.MCPServer
	Decider enforce.Decider
	Auth    enforce.Authenticator
	// ResourceMetadata returns the URL of the RFC 9728 metadata for a
	// server's endpoint, named in 401 challenges.
	ResourceMetadata func(r *http.Request, server string) string
	// MaxRequestBytes caps one HTTP request body (default 1 MiB).
	MaxRequestBytes int64
	// AllowedOrigins are browser origins, besides writ's own, allowed to
	// call the gateway.
	AllowedOrigins []string
	// Getenv resolves ${env:NAME} in upstream settings (default os.Getenv).
	Getenv func(string) string
	// Refused, when set, records a request refused after its credential
	// verified (a session opened by another task), as the decision API
	// records refused credentials.
	Refused func(ctx context.Context, cred task.VerifiedCredential, reason, detail string)
	// ApprovalURL, when set, gives the console's page for a step-up
	// approval (approve.go): a tools/call that needs one then asks the
	// agent's user to open it, by URL-mode elicitation, and waits for the
	// decision, when the client supports it and the Decider is an
	// enforce.ApprovalWaiter. Nil, or an empty URL, answers the step-up
	// error.
	ApprovalURL func(approvalID string) string
	// Tracer, when set, traces each mediated request (trace.go); nil is
	// tracing off.
	Tracer *tracing.Tracer
	Logger *slog.Logger
}

// SessionIdleTimeout ends a 2025-11-25 session after this long without a
// request; the client then starts a new one.
const SessionIdleTimeout = 30 * time.Minute

// DefaultMaxRequestBytes caps one request to the gateway.
const DefaultMaxRequestBytes = 1 << 20

// Gateway serves /mcp/<server> for every configured server.
type Gateway struct {
	cfg       Config
	log       *slog.Logger
	upstreams map[string]*upstream
	handlers  map[string]http.Handler
	servers   []*mcp.Server // writ's side of each server, for CloseSessions
	owners    owners        // the task of each agent session
	flights   task.InFlight // requests in flight, by task
	closeOnce sync.Once
}

// New builds the gateway. It starts no process and opens no connection:
// Start does.
func New(cfg Config) (*Gateway, error) {
	if cfg.Decider == nil || cfg.Auth == nil {
		return nil, errors.New("gateway: Decider and Auth are required")
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := (config.MCPConfig{Servers: cfg.Servers}).Validate(); err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, upstreams: map[string]*upstream{}, handlers: map[string]http.Handler{}}
	for name, sc := range cfg.Servers {
		u := newUpstream(name, sc, cfg.Getenv, cfg.Logger.With("upstream", name))
		g.upstreams[name] = u
		g.handlers[name] = g.serverHandler(name, u)
	}
	return g, nil
}

// Servers lists the configured server names, sorted.
func (g *Gateway) Servers() []string {
	return slices.Sorted(maps.Keys(g.upstreams))
}

// Start opens a first session with every upstream (starting stdio
// servers), in the background: a slow upstream does not hold up the
// server. It is the shared session, or, with per-task sessions, the one
// the first task to call takes over. Calls that arrive meanwhile wait for
// it. A server that does not start is logged and tried again on its next
// call; the gateway answers for it with a clear error meanwhile.
func (g *Gateway) Start(ctx context.Context) {
	for _, name := range g.Servers() {
		u := g.upstreams[name]
		go func() {
			if err := u.start(); err != nil {
				g.log.WarnContext(ctx, "MCP upstream not reachable at start; retried on use", "upstream", name, "err", err)
			}
		}()
	}
}

// Shutdown closes every upstream session, stopping stdio processes.
func (g *Gateway) Shutdown(ctx context.Context) error {
	var errs []error
	g.closeOnce.Do(func() {
		for _, u := range g.upstreams {
			errs = append(errs, u.close())
		}
	})
	return errors.Join(errs...)
}

// TaskEnded cancels the requests of a task that has ended (the upstream is
// sent notifications/cancelled, the agent an error, and the ledger records
// the calls as cancelled), then closes the task's upstream sessions: what
// a stateful server kept for it goes with them. It does not block.
func (g *Gateway) TaskEnded(taskID string) {
	g.flights.EndTask(taskID)
	for _, u := range g.upstreams {
		u.endTask(taskID)
	}
}

// CredentialRevoked cancels the requests made with a credential that has
// been revoked, as TaskEnded does. It does not block.
func (g *Gateway) CredentialRevoked(jti string) {
	g.flights.Revoke(jti)
}

// CloseSessions ends every agent's session, and so its standing GET
// stream, so that a graceful HTTP shutdown is not held up by them. Agents
// reconnect to the next server.
func (g *Gateway) CloseSessions() {
	for _, srv := range g.servers {
		for ss := range srv.Sessions() {
			ss.Close()
		}
	}
}

// ServeHTTP answers /mcp/<server>: Origin check, task token, then the MCP
// Streamable HTTP transport (both the 2026-07-28 stateless protocol and
// 2025-11-25 sessions).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("server")
	h := g.handlers[name]
	if h == nil {
		writeError(w, refusal.NotFound, "not_found", fmt.Sprintf("no MCP server %q is configured", name))
		return
	}
	if !g.originAllowed(r) {
		writeError(w, refusal.Forbidden, "forbidden_origin", "the request's Origin is not allowed to call this gateway")
		return
	}
	if r.ContentLength > g.cfg.MaxRequestBytes {
		writeError(w, refusal.TooLarge, "too_large", "request body is larger than the limit")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxRequestBytes)
	cred, ok := g.cfg.Auth(challengeWriter(w, g.cfg.ResourceMetadata, r, name), r)
	if !ok {
		return
	}
	sid := r.Header.Get("Mcp-Session-Id")
	if sid != "" {
		if owner, ok := g.owners.of(name, sid, time.Now()); ok && owner != cred.TaskID {
			detail := "this MCP session was opened with another task's credential (task " + owner + ")"
			if g.cfg.Refused != nil {
				g.cfg.Refused(context.WithoutCancel(r.Context()), cred, "session_of_another_task", detail)
			}
			writeError(w, refusal.Forbidden, "forbidden", detail)
			return
		}
	}
	// The SDK carries the verified credential to the method handlers as
	// its TokenInfo; the agent's token itself goes no further.
	r2 := r.Clone(context.WithValue(r.Context(), credKey{}, verified{cred: cred, source: abuse.PeerHost(r)}))
	r2.Header.Set("Authorization", "Bearer verified")
	r2.Header.Del("DPoP")
	jw := &jsonErrors{ResponseWriter: w}
	h.ServeHTTP(jw, r2)
	jw.finish()
	if opened := w.Header().Get("Mcp-Session-Id"); jw.code < 400 && sid == "" && opened != "" {
		g.owners.opened(name, opened, cred.TaskID, time.Now())
	} else if jw.code < 400 && sid != "" && r.Method == http.MethodDelete {
		g.owners.closed(name, sid)
	}
}

type credKey struct{}

type verified struct {
	cred   task.VerifiedCredential
	source string
}

// serverHandler is the MCP server writ presents for one upstream.
func (g *Gateway) serverHandler(name string, u *upstream) http.Handler {
	srv := mcp.NewServer(&mcp.Implementation{Name: "writ-" + name, Version: version.String()}, &mcp.ServerOptions{
		Capabilities: &mcp.ServerCapabilities{
			Tools:     &mcp.ToolCapabilities{},
			Resources: &mcp.ResourceCapabilities{},
			Prompts:   &mcp.PromptCapabilities{},
		},
		Logger: g.log,
	})
	srv.AddReceivingMiddleware(g.middleware(name, u))
	g.servers = append(g.servers, srv)
	// The SDK serves 2026-07-28 only from a stateless handler, and
	// 2025-11-25 sessions from a stateful one: each request goes to the
	// handler of the protocol it speaks. Answers are event streams, so that
	// a call's progress notifications reach the agent on the call's own.
	opts := func(stateless bool) *mcp.StreamableHTTPOptions {
		return &mcp.StreamableHTTPOptions{Stateless: stateless, MaxRequestBodyBytes: g.cfg.MaxRequestBytes,
			Logger: g.log, PropagateRequestCancellation: true, SessionTimeout: SessionIdleTimeout}
	}
	get := func(*http.Request) *mcp.Server { return srv }
	sessions, stateless := mcp.NewStreamableHTTPHandler(get, opts(false)), mcp.NewStreamableHTTPHandler(get, opts(true))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Session-Id") == "" && statelessProtocol(r.Header) {
			stateless.ServeHTTP(w, r)
			return
		}
		sessions.ServeHTTP(w, r)
	})
	verify := func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		v, ok := ctx.Value(credKey{}).(verified)
		if !ok {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: v.cred.TaskID, Expiration: v.cred.Expiry, Extra: map[string]any{"writ": v}}, nil
	}
	return auth.RequireBearerToken(verify, nil)(h)
}

// statelessProtocol reports whether a request speaks the stateless
// protocol (2026-07-28 and later), which sends its version, and its
// method in Mcp-Method, with every request.
func statelessProtocol(h http.Header) bool {
	v := h.Get("Mcp-Protocol-Version")
	return v >= "2026-07-28" || (v == "" && h.Get("Mcp-Method") != "")
}

// originAllowed checks Origin as the MCP transport requires: absent (not a
// browser), writ's own origin, or one configured.
func (g *Gateway) originAllowed(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	if strings.EqualFold(o, scheme+r.Host) {
		return true
	}
	for _, a := range g.cfg.AllowedOrigins {
		if strings.EqualFold(o, strings.TrimSuffix(a, "/")) {
			return true
		}
	}
	return false
}
