package server

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/writhq/writ/internal/config"
)

// StartupError is a configuration writ refuses to serve with: Error says
// what is wrong and why, Hint what to change.
type StartupError struct {
	Problem string
	Hint    string
}

func (e *StartupError) Error() string { return e.Problem }

// checkStartup refuses configurations that would serve but must not: a
// dev server others can reach (the dev issuer signs anyone in as anyone,
// admin included, with no secret), and a server nobody could use: no
// agent could obtain a task token, or nobody could open a task. It runs
// before anything is opened.
func checkStartup(cfg config.Config, log *slog.Logger) error {
	if cfg.Dev {
		if cfg.DevAllowRemoteInsecure {
			log.Warn("--dev-allow-remote-insecure: anyone who reaches " + cfg.Listen + " can sign in as anyone, admin included")
			return nil
		}
		if !loopback(cfg.Listen) {
			return &StartupError{
				Problem: fmt.Sprintf("--dev refuses to listen on %s: the dev issuer signs anyone in as anyone, admin included, with no secret, so a dev server must only be reachable from this machine", cfg.Listen),
				Hint:    "listen on a loopback address (--listen 127.0.0.1:7780, [::1]:7780 or localhost:7780); to expose a throwaway dev server on purpose, add --dev-allow-remote-insecure",
			}
		}
		return nil
	}
	id := cfg.Identity
	agents := len(id.SPIFFE.TrustDomains) > 0
	requesters := len(id.SPIFFE.Roles["requester"]) > 0
	approvers := len(id.SPIFFE.Roles["approver"]) > 0
	for _, o := range id.OIDC {
		agents = agents || o.Kind == "agent"
		requesters = requesters || len(o.Roles["requester"]) > 0
		approvers = approvers || len(o.Roles["approver"]) > 0
	}
	var problems, hints []string
	if !agents {
		problems = append(problems, "no agent identity source is configured, so no agent could obtain a task token")
		hints = append(hints, "add identity.spiffe.trust_domains (agents with SPIFFE SVIDs) or an identity.oidc issuer with kind: agent")
	}
	if !requesters {
		problems = append(problems, "no identity source grants the requester role, so nobody could open a task")
		hints = append(hints, "map it in identity.oidc[].roles.requester (claim values of your identity provider) or identity.spiffe.roles.requester (SPIFFE IDs of orchestrators)")
	}
	if len(problems) > 0 {
		return &StartupError{
			Problem: "writ server would serve nobody: " + strings.Join(problems, "; and "),
			Hint:    strings.Join(hints, "; ") + " (docs/identity.md); for a local trial, writ server --dev",
		}
	}
	if !approvers {
		log.Warn("no identity source grants the approver role: tasks and calls that policy sends for approval wait until they expire; " +
			"map it in identity.oidc[].roles.approver or identity.spiffe.roles.approver")
	}
	return nil
}

// loopback reports whether the listen address HOST:PORT can only be
// reached from this machine: a loopback IP, or localhost. An empty host,
// 0.0.0.0, :: and every other name may be reachable from elsewhere.
func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		// Whatever this machine says localhost is, all of it.
		addrs, err := net.LookupHost("localhost")
		if err != nil || len(addrs) == 0 {
			return false
		}
		for _, s := range addrs {
			if !loopback(net.JoinHostPort(s, "0")) {
				return false
			}
		}
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.Unmap().IsLoopback()
}
