package cli

import (
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/datadir"
)

// configFlags binds the flags every command that reads configuration takes,
// and applies them over the file and environment after parsing.
type configFlags struct {
	file    string
	dataDir string
	extra   []func(*config.Config)
	fs      *flag.FlagSet
}

func addConfigFlags(fs *flag.FlagSet) *configFlags {
	cf := &configFlags{fs: fs}
	fs.StringVar(&cf.file, "config", "", "YAML configuration `file` (or WRIT_CONFIG)")
	fs.StringVar(&cf.dataDir, "data-dir", "", "data `directory` (default ./writ-data, or WRIT_DATA_DIR)")
	cf.stringFlag("store", "ledger store `backend`: sqlite (default, in the data directory) or postgres (or WRIT_STORE)", func(c *config.Config) *string { return &c.Store })
	cf.stringFlag("dsn", "PostgreSQL connection `string` for --store postgres (prefer WRIT_DSN or dsn_file: a flag shows in the process list)", func(c *config.Config) *string { return &c.DSN })
	return cf
}

// storeOptions returns how to open the configured store.
func storeOptions(c config.Config, write bool) (datadir.Options, error) {
	o := datadir.Options{Write: write}
	if write {
		o.Origin, o.KeyFile = c.Ledger.Origin, c.Ledger.KeyFile
	}
	if c.Postgres() {
		dsn, err := c.StoreDSN()
		if err != nil {
			return o, err
		}
		o.Store, o.DSN = datadir.StorePostgres, dsn
	}
	return o, nil
}

// stringFlag adds a string flag that, when set, overrides a config field.
func (cf *configFlags) stringFlag(name, usage string, field func(*config.Config) *string) {
	var v string
	cf.fs.StringVar(&v, name, "", usage)
	cf.extra = append(cf.extra, func(c *config.Config) {
		if cf.isSet(name) {
			*field(c) = v
		}
	})
}

// boolFlag adds a boolean flag that, when set, overrides a config field.
func (cf *configFlags) boolFlag(name, usage string, field func(*config.Config) *bool) {
	var v bool
	cf.fs.BoolVar(&v, name, false, usage)
	cf.extra = append(cf.extra, func(c *config.Config) {
		if cf.isSet(name) {
			*field(c) = v
		}
	})
}

func (cf *configFlags) isSet(name string) bool {
	set := false
	cf.fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// load reads the configuration: file, then WRIT_* environment, then flags.
func (cf *configFlags) load(io IO) (config.Config, error) {
	path := cf.file
	if path == "" {
		path = io.Getenv("WRIT_CONFIG")
	}
	c, err := config.Load(path, io.Getenv)
	if err != nil {
		return c, withHint(err, "check the file against docs/configuration.md")
	}
	if cf.dataDir != "" {
		c.DataDir = cf.dataDir
	}
	for _, f := range cf.extra {
		f(&c)
	}
	if err := c.Validate(); err != nil {
		return c, withHint(fmt.Errorf("configuration: %w", err), "see docs/configuration.md for every setting")
	}
	return c, nil
}

// parse parses a local command's flags, checks it has between min and max
// positional arguments, and returns them with the configuration.
func (cf *configFlags) parse(c *command, io IO, args []string, min, max int) ([]string, config.Config, error) {
	pos, err := parseArgs(c, cf.fs, args, min, max)
	if err != nil {
		return nil, config.Config{}, err
	}
	cfg, err := cf.load(io)
	return pos, cfg, err
}

// newLogger builds the operational logger (JSON or text on stderr).
func newLogger(c config.Config, io IO) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	w := io.Stderr
	if w == nil {
		w = os.Stderr
	}
	if c.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
