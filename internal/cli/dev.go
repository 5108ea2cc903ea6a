package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/writhq/writ/internal/identity"
)

// devCommand groups the dev issuer: a local key whose tokens a server started
// with --dev trusts. Never for production.
func devCommand() *command {
	return &command{
		name:    "dev",
		summary: "local dev issuer: mint human tokens and agent JWT-SVIDs (trusted only by 'writ server --dev')",
		subs:    []*command{devInitCommand(), devTokenCommand(), devSVIDCommand()},
	}
}

func devInitCommand() *command {
	c := &command{name: "init", args: "[--data-dir DIR]", summary: "create the dev signing key and JWKS in the data directory"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		_, cfg, err := addConfigFlags(fs).parse(c, io, args, 0, 0)
		if err != nil {
			return err
		}
		created, err := identity.EnsureDevIssuer(cfg.DataDir)
		if err != nil {
			return err
		}
		key, jwks := identity.DevPaths(cfg.DataDir)
		if created {
			fmt.Fprintf(io.Stderr, "writ: created dev issuer key %s and JWKS %s\n", key, jwks)
		} else {
			fmt.Fprintf(io.Stderr, "writ: dev issuer already exists: %s\n", key)
		}
		fmt.Fprintf(io.Stderr, "writ: %s\n", identity.DevWarning)
		return nil
	}
	return c
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func devTokenCommand() *command {
	c := &command{name: "token", args: "--human NAME [--role ROLE]... [--ttl 1h] [--data-dir DIR]",
		summary: "print a dev OIDC token for a human (roles: requester, approver, auditor, admin)"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		cf := addConfigFlags(fs)
		human := fs.String("human", "", "the human's `name` (token subject)")
		var roles multiFlag
		fs.Var(&roles, "role", "a `role` to grant; repeat for more")
		ttl := fs.Duration("ttl", time.Hour, "token lifetime (at most 24h)")
		_, err := parseArgs(c, fs, args, 0, 0)
		if err != nil {
			return err
		}
		if *human == "" {
			return &usageError{msg: "missing --human", hint: fmt.Sprintf("usage: %s %s", c.path(), c.args)}
		}
		rs := make([]identity.Role, len(roles))
		for i, r := range roles {
			rs[i] = identity.Role(r)
		}
		return printDevToken(io, cf, func(dataDir string) (string, error) {
			return identity.DevToken(dataDir, *human, rs, *ttl, time.Now())
		})
	}
	return c
}

func devSVIDCommand() *command {
	c := &command{name: "svid", args: "--agent SPIFFE-ID [--audience AUD]... [--ttl 5m] [--data-dir DIR]",
		summary: "print a dev JWT-SVID for an agent in trust domain " + identity.DevTrustDomain}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		cf := addConfigFlags(fs)
		agent := fs.String("agent", "", "the agent's SPIFFE `ID`, e.g. spiffe://"+identity.DevTrustDomain+"/agent/summarizer")
		var aud multiFlag
		fs.Var(&aud, "audience", "an `audience`; repeat for more (default writ)")
		ttl := fs.Duration("ttl", 5*time.Minute, "token lifetime (at most 24h)")
		_, err := parseArgs(c, fs, args, 0, 0)
		if err != nil {
			return err
		}
		if *agent == "" {
			return &usageError{msg: "missing --agent", hint: fmt.Sprintf("usage: %s %s", c.path(), c.args)}
		}
		if len(aud) == 0 {
			aud = multiFlag{"writ"}
		}
		return printDevToken(io, cf, func(dataDir string) (string, error) {
			return identity.DevSVID(dataDir, *agent, aud, *ttl, time.Now())
		})
	}
	return c
}

// printDevToken loads the configuration and prints the token that mint
// signs with the dev issuer of its data directory.
func printDevToken(io IO, cf *configFlags, mint func(dataDir string) (string, error)) error {
	cfg, err := cf.load(io)
	if err != nil {
		return err
	}
	tok, err := mint(cfg.DataDir)
	if err != nil {
		return devHint(err)
	}
	fmt.Fprintln(io.Stdout, tok)
	return nil
}

func devHint(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return withHint(err, "run 'writ dev init' with the same --data-dir first")
	}
	return err
}
