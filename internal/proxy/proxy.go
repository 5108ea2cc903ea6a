// Package proxy is writ's HTTP reverse proxy for REST tools: a request to
// /proxy/<upstream>/<path> is forwarded only when a configured rule maps
// its method and path to a tool, and policy allows that tool call. The
// decision is recorded before the request leaves writ, the response when it
// has been passed on in full. The agent's task token is never forwarded;
// the upstream's credentials come from writ's configuration.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/enforce"
	"github.com/writhq/writ/internal/httpjson"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/tracing"
)

// Config configures a Proxy.
type Config struct {
	Upstreams map[string]config.ProxyUpstream
	Decider   enforce.Decider
	Auth      enforce.Authenticator
	// Getenv resolves ${env:NAME} in header values (default os.Getenv).
	Getenv func(string) string
	// Tracer, when set, gives each call an execute_tool span and passes
	// its trace context upstream; nil is tracing off.
	Tracer *tracing.Tracer
	Logger *slog.Logger
}

// DefaultMaxBodyBytes caps a request body, and what is recorded of each body.
const DefaultMaxBodyBytes = 1 << 20

// Proxy serves /proxy/<upstream>/….
type Proxy struct {
	cfg       Config
	log       *slog.Logger
	upstreams map[string]*upstream
	calls     task.InFlight
}

type upstream struct {
	name    string
	base    *url.URL
	headers http.Header // expanded: secrets
	forward []string    // the agent's headers passed on, canonical
	timeout time.Duration
	maxBody int64
	rules   *http.ServeMux
	client  *http.Client
}

// New builds the proxy, expanding the upstreams' secret references now.
func New(cfg Config) (*Proxy, error) {
	if cfg.Decider == nil || cfg.Auth == nil {
		return nil, errors.New("proxy: Decider and Auth are required")
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := (config.ProxyConfig{Upstreams: cfg.Upstreams}).Validate(); err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, log: cfg.Logger, upstreams: map[string]*upstream{}}
	for _, name := range slices.Sorted(maps.Keys(cfg.Upstreams)) {
		uc := cfg.Upstreams[name]
		base, _ := url.Parse(uc.URL)
		u := &upstream{name: name, base: base, headers: http.Header{}, forward: forwardList(uc.ForwardHeaders), timeout: uc.Timeout, maxBody: uc.MaxBodyBytes, rules: http.NewServeMux()}
		if u.timeout <= 0 {
			u.timeout = config.DefaultUpstreamTimeout
		}
		if u.maxBody <= 0 {
			u.maxBody = DefaultMaxBodyBytes
		}
		for k, v := range uc.Headers {
			x, err := config.ExpandSecrets(v, cfg.Getenv)
			if err != nil {
				return nil, fmt.Errorf("proxy.upstreams.%s.headers.%s: %v", name, k, err)
			}
			u.headers.Set(k, x)
		}
		tc, err := uc.TLS.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("proxy.upstreams.%s.%v", name, err)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tc
		tr.ResponseHeaderTimeout = u.timeout
		tr.MaxIdleConnsPerHost = 256 // Go's default of 2 reconnects under concurrent calls
		u.client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for i, rule := range uc.Rules {
			if err := checkRuleResource(name, i, rule); err != nil {
				return nil, err
			}
			u.rules.Handle(strings.ToUpper(rule.Method)+" "+rule.Path, &ruleHandler{p: p, u: u, rule: rule})
		}
		p.upstreams[name] = u
	}
	return p, nil
}

type ctxKey struct{}

type verified struct {
	cred task.VerifiedCredential
}

// ServeHTTP authenticates the request, finds its rule and hands it on.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u := p.upstreams[r.PathValue("upstream")]
	if u == nil {
		writeError(w, refusal.NotFound, "not_found", fmt.Sprintf("no proxy upstream %q is configured", r.PathValue("upstream")))
		return
	}
	cred, ok := p.cfg.Auth(w, r)
	if !ok {
		return
	}
	// Rules match the path below the upstream's prefix, in normal form.
	escaped, decoded, err := requestPath(r)
	if err != nil {
		writeError(w, refusal.Invalid, "invalid_request", fmt.Sprintf("the path %q %v; writ forwards only paths in normal form", r.URL.EscapedPath(), err))
		return
	}
	inner := r.Clone(context.WithValue(r.Context(), ctxKey{}, verified{cred: cred}))
	inner.URL.Path, inner.URL.RawPath = decoded, escaped
	if _, pattern := u.rules.Handler(inner); pattern == "" {
		writeError(w, refusal.Forbidden, "no_rule", fmt.Sprintf("no rule of upstream %s maps %s %s to a tool; writ forwards only mapped requests", u.name, r.Method, inner.URL.Path))
		return
	}
	u.rules.ServeHTTP(w, inner)
}

func writeError(w http.ResponseWriter, kind refusal.Kind, code, detail string) {
	httpjson.Error(w, kind, code, detail)
}

// TaskEnded cancels the calls in flight under a task that has ended
// (completed, expired or revoked): their upstream requests are cancelled,
// nothing more of their responses reaches the agent, and they are recorded
// as cancelled. It does not block.
func (p *Proxy) TaskEnded(taskID string) { p.calls.EndTask(taskID) }

// CredentialRevoked cancels the calls in flight made with a credential
// that was revoked, as TaskEnded does. It does not block.
func (p *Proxy) CredentialRevoked(jti string) { p.calls.Revoke(jti) }
