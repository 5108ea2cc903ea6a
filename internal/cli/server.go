package cli

import (
	"context"
	"errors"
	"strings"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/server"
	"github.com/writhq/writ/internal/task"
)

func serverCommand() *command {
	c := &command{
		name:    "server",
		args:    "[flags]",
		summary: "run the writ server (embedded SQLite store by default; --store postgres for replicas)",
	}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		cf := addConfigFlags(fs)
		cf.stringFlag("listen", "listen `address` HOST:PORT (default 127.0.0.1:7780)", func(c *config.Config) *string { return &c.Listen })
		cf.stringFlag("environment", "runtime environment `name` policy sees (default dev)", func(c *config.Config) *string { return &c.Environment })
		cf.stringFlag("policy", "policy bundle `dir` (.rego or .cedar files); default: the embedded pack", func(c *config.Config) *string { return &c.Policy.Dir })
		cf.boolFlag("dev", "trust the local dev identity issuer (creates it if needed); never in production", func(c *config.Config) *bool { return &c.Dev })
		cf.boolFlag("dev-allow-remote-insecure", "let --dev listen on an address other machines can reach, where anyone can sign in as anyone (admin included)", func(c *config.Config) *bool { return &c.DevAllowRemoteInsecure })
		cf.boolFlag("repair-projections", "start even if the task, approval and credential tables disagree with the ledger, rewriting them from it (recovery only)", func(c *config.Config) *bool { return &c.RepairProjections })
		cf.stringFlag("log-level", "operational log `level`: debug, info, warn, error", func(c *config.Config) *string { return &c.Log.Level })
		cf.stringFlag("log-format", "operational log `format`: json or text", func(c *config.Config) *string { return &c.Log.Format })
		_, cfg, err := cf.parse(c, io, args, 0, 0)
		if err != nil {
			return err
		}
		log := newLogger(cfg, io)
		gc := server.TuneGCForStart()
		defer gc.Restore()
		srv, err := server.New(ctx, cfg, log)
		if err != nil {
			var le *datadir.LockedError
			var pm *task.ProjectionMismatchError
			var se *server.StartupError
			verify := "writ ledger verify --data-dir " + cfg.DataDir
			if cfg.Postgres() {
				verify = "writ ledger verify --store postgres"
			}
			switch {
			case errors.As(err, &se):
				return withHint(err, "%s", se.Hint)
			case errors.As(err, &pm):
				return withHint(err, "run '%s' to see every difference; once the cause is understood, 'writ server --repair-projections' rewrites the tables from the ledger", verify)
			case errors.As(err, &le):
				return withHint(err, "stop the other server, or give this one its own --data-dir (several servers share a ledger only with --store postgres)")
			case errors.Is(err, ledger.ErrTampered):
				return withHint(err, "run '%s' to see what changed; restore the store from a backup that verifies", verify)
			case cfg.Postgres() && strings.Contains(err.Error(), "key"):
				return withHint(err, "every replica on one database needs the same ledger.key_file and credentials.key_file (docs/postgres.md)")
			}
			return err
		}
		gc.Ready() // the state is built: from here on, a running server's room
		return srv.Serve(ctx)
	}
	return c
}
