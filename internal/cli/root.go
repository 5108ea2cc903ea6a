// Package cli implements the writ command line: one file per command group.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

// IO is what a command reads and writes; tests substitute their own.
type IO struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// StdIO returns the process's standard streams and environment.
func StdIO() IO {
	return IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// command is one verb of the CLI. A command with subcommands has no run.
type command struct {
	name    string
	args    string // synopsis of the arguments, for help
	summary string
	run     func(ctx context.Context, io IO, args []string) error
	subs    []*command

	parentPath string // set while dispatching, for help and errors
}

// commands returns the top-level verbs. Each group lives in its own file.
func commands() []*command {
	return []*command{
		serverCommand(),
		ledgerCommand(),
		versionCommand(),
		devCommand(),
		policyCommand(),
		taskCommand(),
		approveCommand(),
		denyCommand(),
		approvalsCommand(),
		tokenCommand(),
		authorizeCommand(),
		traceCommand(),
		exportCommand(),
		verifyCommand(),
		eventsCommand(),
		whoApprovedCommand(),
		accessCommand(),
		reportCommand(),
		execCommand(),
		quickstartCommand(),
		benchCommand(),
	}
}

// Main runs the CLI with args (without the program name) and returns the exit
// status.
func Main(ctx context.Context, args []string, io IO) int {
	root := &command{name: "writ", summary: "runtime authorization broker and evidence ledger for AI agents", subs: commands()}
	err := dispatch(ctx, io, root, args)
	if err == nil {
		return 0
	}
	var h *usageError
	if errors.As(err, &h) && h.help {
		return 0
	}
	// A wrapped command (writ exec) exits with its own status.
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) && ec.ExitCode() > 0 {
		return ec.ExitCode()
	}
	printError(io.Stderr, err)
	if errors.As(err, &h) {
		return 2
	}
	return 1
}

func dispatch(ctx context.Context, io IO, c *command, args []string) error {
	if c.run != nil {
		return c.run(ctx, io, args)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printGroupHelp(io.Stdout, c)
		if len(args) == 0 {
			return &usageError{msg: "missing command", hint: fmt.Sprintf("run '%s help' for the list of commands", c.path())}
		}
		return &usageError{help: true}
	}
	for _, s := range c.subs {
		if s.name == args[0] {
			s.parentPath = c.path()
			return dispatch(ctx, io, s, args[1:])
		}
	}
	return &usageError{
		msg:  fmt.Sprintf("unknown command %q", args[0]),
		hint: fmt.Sprintf("run '%s help' for the list of commands", c.path()),
	}
}

func printGroupHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "%s: %s\n\nUsage: %s <command> [flags]\n\nCommands:\n", c.path(), c.summary, c.path())
	subs := append([]*command(nil), c.subs...)
	sort.Slice(subs, func(i, j int) bool { return subs[i].name < subs[j].name })
	for _, s := range subs {
		fmt.Fprintf(w, "  %-12s %s\n", s.name, s.summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> --help' for a command's flags.\n", c.path())
}

// usageError is a mistake in how a command was called; it exits with status 2.
type usageError struct {
	msg  string
	hint string
	help bool // --help was asked for; not an error
}

func (e *usageError) Error() string { return e.msg }

// hintError carries a line of advice printed under the error.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

// withHint wraps err with a hint for the user.
func withHint(err error, format string, a ...any) error {
	return &hintError{err: err, hint: fmt.Sprintf(format, a...)}
}

func printError(w io.Writer, err error) {
	fmt.Fprintf(w, "writ: error: %s\n", err)
	var h *hintError
	var u *usageError
	switch {
	case errors.As(err, &h) && h.hint != "":
		fmt.Fprintf(w, "writ: hint: %s\n", h.hint)
	case errors.As(err, &u) && u.hint != "":
		fmt.Fprintf(w, "writ: hint: %s\n", u.hint)
	}
}

// newFlags returns a flag set for a command that prints its usage on --help.
func newFlags(c *command, io IO) *flag.FlagSet {
	fs := flag.NewFlagSet(c.path(), flag.ContinueOnError)
	fs.SetOutput(io.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(io.Stdout, "Usage: %s %s\n\n%s\n\nFlags:\n", c.path(), c.args, c.summary)
		fs.SetOutput(io.Stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Stderr)
	}
	return fs
}

// parseFlags parses flags anywhere among the arguments (the standard flag
// package stops at the first positional one) and returns the positionals.
// Everything after "--" is positional.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	// The flag package prints usage on its own on -h and on bad flags; we
	// print it once, for --help, and report bad flags as errors.
	usage := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = usage }()
	var pos []string
	for {
		fs.SetOutput(io.Discard)
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return nil, &usageError{help: true}
		}
		if err != nil {
			return nil, &usageError{msg: err.Error(), hint: fmt.Sprintf("run '%s --help' for its flags", fs.Name())}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseArgs parses flags and checks that between min and max (-1: any)
// positional arguments remain.
func parseArgs(c *command, fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	return pos, wantArgs(c, pos, min, max)
}

// wantArgs checks the number of positional arguments.
func wantArgs(c *command, pos []string, min, max int) error {
	if len(pos) >= min && (max < 0 || len(pos) <= max) {
		return nil
	}
	what := "too many arguments"
	if len(pos) < min {
		what = "missing arguments"
	}
	return &usageError{msg: what, hint: fmt.Sprintf("usage: %s %s", c.path(), c.args)}
}

func (c *command) path() string {
	if c.parentPath == "" {
		return c.name
	}
	return c.parentPath + " " + c.name
}
