package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// MCPConfig configures the MCP gateway: each server is served to agents at
// /mcp/<name> and reached by writ as an MCP client.
type MCPConfig struct {
	Servers map[string]MCPServer `yaml:"servers"`
	// AllowedOrigins are browser origins ("https://app.example.com"),
	// besides writ's own, whose pages may call the gateway.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// MCPServer is one upstream MCP server: a Streamable HTTP URL, or a command
// writ starts and speaks to over stdio. Header and environment values may
// hold ${file:PATH} and ${env:NAME} references, expanded by writ when it
// connects; the expanded values are secrets and never logged or recorded.
type MCPServer struct {
	URL     string            `yaml:"url"`
	Command []string          `yaml:"command"`
	Env     map[string]string `yaml:"env"`
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one call to the upstream (default 30s).
	Timeout time.Duration `yaml:"timeout"`
	// DataClass is the data class of the server's calls (default internal);
	// Tools overrides it per upstream tool name.
	DataClass string             `yaml:"data_class"`
	Tools     map[string]MCPTool `yaml:"tools"`
	// Sessions is how writ's sessions with the upstream map to tasks:
	// SessionsTask (the default) opens one for each task, so that state a
	// stateful server keeps for one task's calls is never seen by another
	// task's; SessionsShared has every task's calls use one session.
	Sessions string `yaml:"sessions"`
	// IdleTimeout closes a task's session after this long without a call
	// (default 5m).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxSessions caps the task sessions open at once (default 64 for a
	// url, 16 for a command: each of those is a process).
	MaxSessions int `yaml:"max_sessions"`
	// TLS configures the connection to an https url.
	TLS UpstreamTLS `yaml:"tls"`
}

// UpstreamTLS configures TLS to an https upstream: the roots that verify
// its certificate, in place of the system's, and a client certificate for
// mutual TLS. The files are read when writ connects (an MCP upstream) or
// starts (the proxy); the key is a secret, never logged.
type UpstreamTLS struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the upstream's certificate must hold, when
	// it is not the URL's host.
	ServerName string `yaml:"server_name"`
}

func (t UpstreamTLS) isZero() bool { return t == UpstreamTLS{} }

func (t UpstreamTLS) validate(at, rawURL string) error {
	if t.isZero() {
		return nil
	}
	if u, err := url.Parse(rawURL); err != nil || u.Scheme != "https" {
		return fmt.Errorf("%s.tls: applies to an https url only", at)
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return fmt.Errorf("%s.tls: set both cert_file and key_file, or neither", at)
	}
	return nil
}

// ClientConfig reads the files and returns the TLS configuration of
// connections to the upstream, or nil when none is set (Go's defaults).
// The client certificate is read again, for the next connection, when its
// files change: short-lived certificates rotate without a restart.
func (t UpstreamTLS) ClientConfig() (*tls.Config, error) {
	if t.isZero() {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
	}
	if t.CertFile != "" {
		r := &certReloader{certFile: t.CertFile, keyFile: t.KeyFile}
		if _, err := r.get(); err != nil {
			return nil, err
		}
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return r.get() }
	}
	return c, nil
}

// certReloader holds a client certificate and reads it again when its
// files have changed since.
type certReloader struct {
	certFile, keyFile string

	mu       sync.Mutex
	cert     *tls.Certificate
	certTime time.Time
	keyTime  time.Time
}

func (r *certReloader) get() (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ci, cerr := os.Stat(r.certFile)
	ki, kerr := os.Stat(r.keyFile)
	if cerr == nil && kerr == nil && r.cert != nil && ci.ModTime().Equal(r.certTime) && ki.ModTime().Equal(r.keyTime) {
		return r.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		// The error names the files and what is wrong, never the key.
		return nil, fmt.Errorf("tls.cert_file and key_file: %w", err)
	}
	r.cert = &cert
	if cerr == nil && kerr == nil {
		r.certTime, r.keyTime = ci.ModTime(), ki.ModTime()
	}
	return r.cert, nil
}

// Values of MCPServer.Sessions.
const (
	SessionsTask   = "task"
	SessionsShared = "shared"
)

// Defaults of the per-task upstream sessions.
const (
	DefaultSessionIdleTimeout = 5 * time.Minute
	DefaultMaxSessions        = 64
	DefaultMaxProcesses       = 16
)

// MCPTool overrides settings for one upstream tool.
type MCPTool struct {
	DataClass string `yaml:"data_class"`
	// Timeout bounds one call of the tool, in place of the server's.
	Timeout time.Duration `yaml:"timeout"`
}

// ProxyConfig configures the HTTP reverse proxy: each upstream is served at
// /proxy/<name>/… and forwarded only for requests that match a rule.
type ProxyConfig struct {
	Upstreams map[string]ProxyUpstream `yaml:"upstreams"`
}

// ProxyUpstream is one REST service behind the proxy.
type ProxyUpstream struct {
	URL string `yaml:"url"`
	// Headers are set on every forwarded request (credential injection);
	// values may hold ${file:PATH} and ${env:NAME} references.
	Headers map[string]string `yaml:"headers"`
	// ForwardHeaders are the request headers passed on from the agent
	// (default DefaultForwardHeaders); others are dropped. Hop-by-hop,
	// credential and override headers are refused (Unforwardable).
	ForwardHeaders []string `yaml:"forward_headers"`
	// Timeout bounds the wait for the upstream's response headers (default 30s).
	Timeout time.Duration `yaml:"timeout"`
	// MaxBodyBytes caps the request body and the part of each body recorded
	// (default 1 MiB).
	MaxBodyBytes int64       `yaml:"max_body_bytes"`
	Rules        []ProxyRule `yaml:"rules"`
	// TLS configures the connection to an https url.
	TLS UpstreamTLS `yaml:"tls"`
}

// ProxyRule maps a method and path pattern (net/http ServeMux syntax, such
// as "/repos/{owner}/{repo}/issues") to what policy decides: the tool,
// operation, resource (with {name} wildcards filled from the path) and data
// class of the request.
type ProxyRule struct {
	Method    string `yaml:"method"`
	Path      string `yaml:"path"`
	Tool      string `yaml:"tool"`
	Operation string `yaml:"operation"`
	Resource  string `yaml:"resource"`
	DataClass string `yaml:"data_class"`
}

// DefaultUpstreamTimeout bounds a call to an MCP or HTTP upstream.
const DefaultUpstreamTimeout = 30 * time.Second

var upstreamName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func validDataClass(c string) bool {
	switch c {
	case "", "public", "internal", "confidential", "restricted":
		return true
	}
	return false
}

// Validate reports the first MCP server setting that cannot work.
func (c MCPConfig) Validate() error {
	for _, o := range c.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("mcp.allowed_origins: %q is not an origin (scheme://host[:port])", o)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Servers)) {
		s := c.Servers[name]
		at := "mcp.servers." + name
		if !upstreamName.MatchString(name) {
			return fmt.Errorf("%s: name must be lower-case letters, digits, '-' or '_'", at)
		}
		if (s.URL == "") == (len(s.Command) == 0) {
			return fmt.Errorf("%s: set exactly one of url and command", at)
		}
		if s.URL != "" {
			if err := checkURL(s.URL); err != nil {
				return fmt.Errorf("%s.url: %v", at, err)
			}
			if len(s.Env) > 0 {
				return fmt.Errorf("%s: env applies to a command only", at)
			}
		} else if len(s.Headers) > 0 {
			return fmt.Errorf("%s: headers apply to a url only (use env for a command)", at)
		}
		if err := s.TLS.validate(at, s.URL); err != nil {
			return err
		}
		if s.Timeout < 0 {
			return fmt.Errorf("%s.timeout: must not be negative", at)
		}
		if s.Sessions != "" && s.Sessions != SessionsTask && s.Sessions != SessionsShared {
			return fmt.Errorf("%s.sessions %q: want %s or %s", at, s.Sessions, SessionsTask, SessionsShared)
		}
		if s.IdleTimeout < 0 {
			return fmt.Errorf("%s.idle_timeout: must not be negative", at)
		}
		if s.MaxSessions < 0 {
			return fmt.Errorf("%s.max_sessions: must not be negative", at)
		}
		if !validDataClass(s.DataClass) {
			return fmt.Errorf("%s.data_class %q: want public, internal, confidential or restricted", at, s.DataClass)
		}
		for tool, t := range s.Tools {
			if !validDataClass(t.DataClass) {
				return fmt.Errorf("%s.tools.%s.data_class %q: want public, internal, confidential or restricted", at, tool, t.DataClass)
			}
			if t.Timeout < 0 {
				return fmt.Errorf("%s.tools.%s.timeout: must not be negative", at, tool)
			}
		}
		if err := checkRefs(at, s.Headers, s.Env); err != nil {
			return err
		}
	}
	return nil
}

// Validate reports the first proxy setting that cannot work.
func (c ProxyConfig) Validate() error {
	for _, name := range slices.Sorted(maps.Keys(c.Upstreams)) {
		u := c.Upstreams[name]
		at := "proxy.upstreams." + name
		if !upstreamName.MatchString(name) {
			return fmt.Errorf("%s: name must be lower-case letters, digits, '-' or '_'", at)
		}
		if err := checkURL(u.URL); err != nil {
			return fmt.Errorf("%s.url: %v", at, err)
		}
		if u.Timeout < 0 || u.MaxBodyBytes < 0 || u.MaxBodyBytes > 64<<20 {
			return fmt.Errorf("%s: timeout must not be negative and max_body_bytes must be 0 to %d", at, 64<<20)
		}
		if len(u.Rules) == 0 {
			return fmt.Errorf("%s: no rules: nothing would be forwarded", at)
		}
		for i, r := range u.Rules {
			if r.Method == "" || !strings.HasPrefix(r.Path, "/") || r.Tool == "" {
				return fmt.Errorf("%s.rules[%d]: method, path (starting with /) and tool are required", at, i)
			}
			if !validDataClass(r.DataClass) {
				return fmt.Errorf("%s.rules[%d].data_class %q: want public, internal, confidential or restricted", at, i, r.DataClass)
			}
			if err := checkPattern(r.Method + " " + r.Path); err != nil {
				return fmt.Errorf("%s.rules[%d]: %v", at, i, err)
			}
		}
		if err := checkRefs(at, u.Headers, nil); err != nil {
			return err
		}
		for i, h := range u.ForwardHeaders {
			if err := checkForwardHeader(h); err != nil {
				return fmt.Errorf("%s.forward_headers[%d]: %v", at, i, err)
			}
		}
		if err := u.TLS.validate(at, u.URL); err != nil {
			return err
		}
	}
	return nil
}

// checkPattern reports a pattern http.ServeMux would refuse.
func checkPattern(p string) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("invalid method or path pattern %q", p)
		}
	}()
	http.NewServeMux().Handle(p, http.NotFoundHandler())
	return nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an absolute http or https URL")
	}
	return nil
}

// checkRefs checks the syntax of the secret references in headers and env
// without reading them.
func checkRefs(at string, maps ...map[string]string) error {
	for _, m := range maps {
		for k, v := range m {
			if _, err := expand(v, func(string, string) (string, error) { return "", nil }); err != nil {
				return fmt.Errorf("%s: %s: %v", at, k, err)
			}
		}
	}
	return nil
}

// ExpandSecrets replaces each ${file:PATH} in s by the file's content
// (without a final newline) and each ${env:NAME} by the variable's value.
// Errors name the reference, never a value.
func ExpandSecrets(s string, getenv func(string) string) (string, error) {
	return expand(s, func(kind, ref string) (string, error) {
		switch kind {
		case "file":
			b, err := os.ReadFile(ref)
			if err != nil {
				return "", fmt.Errorf("secret file %s cannot be read", ref)
			}
			return strings.TrimRight(string(b), "\r\n"), nil
		default:
			v := getenv(ref)
			if v == "" {
				return "", fmt.Errorf("environment variable %s is not set", ref)
			}
			return v, nil
		}
	})
}

// expand parses s for ${kind:ref} references and replaces each by what
// resolve returns. "$$" is a literal "$".
func expand(s string, resolve func(kind, ref string) (string, error)) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$$"):
			b.WriteByte('$')
			s = s[2:]
			continue
		case !strings.HasPrefix(s, "${"):
			b.WriteByte('$')
			s = s[1:]
			continue
		}
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return "", errors.New("unterminated ${ reference")
		}
		kind, ref, ok := strings.Cut(s[2:end], ":")
		if !ok || (kind != "file" && kind != "env") || ref == "" {
			return "", errors.New("want ${file:PATH} or ${env:NAME}")
		}
		v, err := resolve(kind, ref)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
		s = s[end+1:]
	}
}
