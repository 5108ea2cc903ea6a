package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/writhq/writ/internal/bearer"
	"github.com/writhq/writ/internal/gateway"
	"github.com/writhq/writ/internal/proxy"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/task"
)

// gateways are the enforcement points in the agent's path: the MCP gateway
// at /mcp/<server> and the HTTP proxy at /proxy/<upstream>/…. Both verify
// the task token exactly as the decision API does (taskCredential) and
// decide and record through the same task service.
type gateways struct {
	mcp   *gateway.Gateway
	proxy *proxy.Proxy
}

// newGateways builds the gateway and proxy from the configuration.
func (s *Server) newGateways() error {
	g, err := gateway.New(gateway.Config{
		Servers:          s.cfg.MCP.Servers,
		AllowedOrigins:   s.cfg.MCP.AllowedOrigins,
		Decider:          s.decider(),
		Auth:             s.gatewayCredential,
		ResourceMetadata: s.resourceMetadataURL,
		ApprovalURL:      s.approvalURL(),
		Refused:          s.gatewayRefused,
		Tracer:           s.tracer,
		Logger:           s.log.With("component", "mcp"),
	})
	if err != nil {
		return err
	}
	p, err := proxy.New(proxy.Config{
		Upstreams: s.cfg.Proxy.Upstreams,
		Decider:   s.decider(),
		Auth:      s.gatewayCredential,
		Tracer:    s.tracer,
		Logger:    s.log.With("component", "proxy"),
	})
	if err != nil {
		return err
	}
	s.gw = &gateways{mcp: g, proxy: p}
	s.mcp.Store(g)
	s.proxy.Store(p)
	return nil
}

// approvalURL returns the link to the console's page of a step-up
// approval, which the MCP gateway sends an agent's user to (URL-mode
// elicitation): console.public_url, else credentials.public_url, then
// /ui/approvals/<id>. Without the console or a public URL there is no
// page to send anyone to, and it is nil.
func (s *Server) approvalURL() func(string) string {
	base := s.cfg.Console.PublicURL
	if base == "" {
		base = s.cfg.Credentials.PublicURL
	}
	if s.cfg.Console.Disabled || base == "" {
		return nil
	}
	base = strings.TrimSuffix(base, "/")
	return func(id string) string { return base + "/ui/approvals/" + url.PathEscape(id) }
}

// gatewayRefused records a request the MCP gateway refused after its
// credential verified, as auth.rejected, as the rate limits allow (they
// count and log a record that failed).
func (s *Server) gatewayRefused(ctx context.Context, cred task.VerifiedCredential, reason, detail string) {
	_ = s.tasks.RecordRejection(ctx, task.Rejection{TaskID: cred.TaskID, Agent: cred.Agent, JTI: cred.JTI, Reason: reason, Detail: detail})
}

// onTaskEnded is the task service's OnTaskEnded: the gateway and the proxy
// cancel the task's calls in flight, and the gateway closes its upstream
// sessions.
func (s *Server) onTaskEnded(taskID string) {
	if g := s.mcp.Load(); g != nil {
		g.TaskEnded(taskID)
	}
	if p := s.proxy.Load(); p != nil {
		p.TaskEnded(taskID)
	}
}

// startGateways starts the MCP stdio upstreams and connects to the others.
func (s *Server) startGateways(ctx context.Context) {
	if s.gw != nil {
		s.gw.mcp.Start(ctx)
		// Agents' MCP sessions hold GET streams open; they end as the
		// shutdown begins, or it would wait for them.
		s.http.RegisterOnShutdown(s.gw.mcp.CloseSessions)
	}
}

// stopGateways closes the MCP upstream sessions, stopping stdio servers.
func (s *Server) stopGateways(ctx context.Context) error {
	if s.gw == nil {
		return nil
	}
	return s.gw.mcp.Shutdown(ctx)
}

// gatewayRoutes serves the MCP gateway, its RFC 9728 metadata and the proxy.
func (s *Server) gatewayRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/mcp/{server}", func(w http.ResponseWriter, r *http.Request) { s.gw.mcp.ServeHTTP(w, r) })
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp/{server}", s.protectedResource)
	mux.HandleFunc("/proxy/{upstream}/{path...}", func(w http.ResponseWriter, r *http.Request) { s.gw.proxy.ServeHTTP(w, r) })
}

// gatewayCredential verifies the task token like the decision API, and
// answers 403 insufficient_scope (RFC 6750 §3.1) when the token's task may
// call nothing on the MCP server asked for.
func (s *Server) gatewayCredential(w http.ResponseWriter, r *http.Request) (task.VerifiedCredential, bool) {
	cred, ok := s.taskCredential(w, r)
	if !ok {
		return cred, false
	}
	// A gateway answers the token's expiry here, as HTTP, rather than as
	// an error inside the MCP exchange.
	if !time.Now().Before(cred.Expiry) {
		s.refuseToken(w, r, invalidToken(cred.JTI, cred.TaskID, "access token has expired"), false)
		return cred, false
	}
	server := r.PathValue("server")
	if server == "" {
		return cred, true
	}
	tools, err := s.tasks.ScopeTools(cred.TaskID)
	if err != nil {
		s.taskFail(w, r, err)
		return cred, false
	}
	if !scopeReaches(tools, server) {
		detail := "the task's scope names no tool of MCP server " + server
		s.rejectExchange(r.Context(), cred.TaskID, "", cred.JTI, "insufficient_scope", detail+" ("+r.Method+" "+r.URL.Path+")")
		w.Header().Set("WWW-Authenticate", `Bearer realm="writ", error="insufficient_scope", scope="`+bearer.Text(server+".*")+`", error_description="`+bearer.Text(detail)+`"`)
		writeError(w, refusal.Forbidden, "insufficient_scope", detail)
		return cred, false
	}
	return cred, true
}

// scopeReaches reports whether some tool pattern can match a tool named
// "<server>.<tool>".
func scopeReaches(patterns []string, server string) bool {
	prefix := server + "."
	for _, p := range patterns {
		lit, _, wild := strings.Cut(p, "*")
		if strings.HasPrefix(lit, prefix) || (wild && strings.HasPrefix(prefix, lit)) {
			return true
		}
	}
	return false
}

// resourceMetadataURL is where the RFC 9728 metadata of a server's
// endpoint is served.
func (s *Server) resourceMetadataURL(r *http.Request, server string) string {
	return s.baseURL(r) + "/.well-known/oauth-protected-resource/mcp/" + server
}

// protectedResource serves RFC 9728 protected-resource metadata for one
// MCP server endpoint: writ is its own authorization server (task tokens
// come from its token endpoint).
func (s *Server) protectedResource(w http.ResponseWriter, r *http.Request) {
	server := r.PathValue("server")
	if !s.hasMCPServer(server) {
		writeError(w, refusal.NotFound, "not_found", "no MCP server "+server+" is configured")
		return
	}
	base := s.baseURL(r)
	w.Header().Set("Cache-Control", "max-age=300")
	writeJSON(w, http.StatusOK, map[string]any{
		"resource":                          base + "/mcp/" + server,
		"authorization_servers":             []string{base},
		"bearer_methods_supported":          []string{"header"},
		"scopes_supported":                  []string{server + ".*"},
		"resource_name":                     "writ MCP gateway: " + server,
		"dpop_bound_access_tokens_required": s.requireBinding,
	})
}

func (s *Server) hasMCPServer(name string) bool {
	_, ok := s.cfg.MCP.Servers[name]
	return ok
}
