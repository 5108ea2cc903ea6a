package server_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/server"
	"github.com/writhq/writ/internal/server/servertest"
)

// startupError starts a server with cfg and returns its refusal, failing
// the test when it starts or fails for another reason. Nothing may have
// been created in the data directory.
func startupError(t *testing.T, cfg config.Config) *server.StartupError {
	t.Helper()
	srv, err := server.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		srv.Shutdown(context.Background())
		t.Fatalf("a server started on %s (dev %v)", cfg.Listen, cfg.Dev)
	}
	var se *server.StartupError
	if !errors.As(err, &se) {
		t.Fatalf("server.New: %v (%T), want a *server.StartupError", err, err)
	}
	if se.Hint == "" {
		t.Errorf("%v: no hint", err)
	}
	if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
		t.Errorf("the refused start touched its data directory: %v", err)
	}
	return se
}

// TestDevRefusesNetworkListen: --dev signs anyone in as anyone, so it only
// listens on loopback unless dev_allow_remote_insecure says otherwise.
func TestDevRefusesNetworkListen(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:0", "[::]:0", ":0", "192.0.2.10:0", "writ.example.com:0", "[::ffff:0.0.0.0]:0"} {
		t.Run(listen, func(t *testing.T) {
			cfg := servertest.Dev(filepath.Join(t.TempDir(), "d"), "dev")
			cfg.Listen = listen
			se := startupError(t, cfg)
			if !strings.Contains(se.Error(), "--dev refuses to listen on "+listen) || !strings.Contains(se.Error(), "anyone") ||
				!strings.Contains(se.Hint, "--dev-allow-remote-insecure") || !strings.Contains(se.Hint, "127.0.0.1") {
				t.Errorf("refusal %q, hint %q", se, se.Hint)
			}
		})
	}
	for _, listen := range []string{"127.0.0.1:0", "127.3.4.5:0", "localhost:0"} {
		t.Run(listen, func(t *testing.T) {
			cfg := servertest.Dev(t.TempDir(), "dev")
			cfg.Listen = listen
			servertest.Start(t, cfg)
		})
	}
	t.Run("allowed on purpose", func(t *testing.T) {
		cfg := servertest.Dev(t.TempDir(), "dev")
		cfg.Listen, cfg.DevAllowRemoteInsecure = "0.0.0.0:0", true
		servertest.Start(t, cfg)
	})
}

// TestServerNobodyCanUse: a server with no agent identity source, or with
// no source of the requester role, refuses to start and names what to
// add.
func TestServerNobodyCanUse(t *testing.T) {
	spiffe := config.SPIFFEConfig{TrustDomains: []config.TrustDomainConfig{{Name: "example.org", BundleFile: "/nonexistent/bundle.json"}}}
	human := config.OIDCIssuerConfig{Issuer: "https://idp.example.com", JWKSFile: "/nonexistent/jwks.json",
		Roles: map[string][]string{"requester": {"eng"}, "approver": {"sec"}}}
	tests := []struct {
		name       string
		identity   func(*config.IdentityConfig)
		want, hint []string // nil: starts past the check
	}{
		{"nothing", func(*config.IdentityConfig) {},
			[]string{"no agent identity source", "requester"}, []string{"identity.spiffe.trust_domains", "kind: agent", "identity.oidc[].roles.requester"}},
		{"agents only", func(c *config.IdentityConfig) { c.SPIFFE = spiffe },
			[]string{"nobody could open a task"}, []string{"identity.spiffe.roles.requester"}},
		{"humans only", func(c *config.IdentityConfig) { c.OIDC = []config.OIDCIssuerConfig{human} },
			[]string{"no agent could obtain a task token"}, []string{"identity.spiffe.trust_domains"}},
		{"an OIDC issuer of agents and SPIFFE requesters", func(c *config.IdentityConfig) {
			c.OIDC = []config.OIDCIssuerConfig{{Issuer: "https://ci.example.com", JWKSFile: "/nonexistent/ci.json", Kind: "agent"}}
			c.SPIFFE.Roles = map[string][]string{"requester": {"spiffe://example.org/orchestrator/*"}}
		}, nil, nil},
		{"both", func(c *config.IdentityConfig) { c.SPIFFE, c.OIDC = spiffe, []config.OIDCIssuerConfig{human} }, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.DataDir, cfg.Listen = filepath.Join(t.TempDir(), "d"), "127.0.0.1:0"
			tt.identity(&cfg.Identity)
			if tt.want == nil {
				srv, err := server.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
				if err == nil {
					srv.Shutdown(context.Background())
				}
				var se *server.StartupError
				if errors.As(err, &se) {
					t.Fatalf("refused a usable identity configuration: %v", err)
				}
				return
			}
			se := startupError(t, cfg)
			for _, w := range tt.want {
				if !strings.Contains(se.Error(), w) {
					t.Errorf("refusal %q does not say %q", se, w)
				}
			}
			for _, h := range tt.hint {
				if !strings.Contains(se.Hint, h) {
					t.Errorf("hint %q does not name %q", se.Hint, h)
				}
			}
		})
	}
}
