package cli

import (
	"context"
	"fmt"
	"runtime/debug"
)

func versionCommand() *command {
	c := &command{name: "version", args: "", summary: "print writ's version"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		_, err := parseArgs(c, fs, args, 0, 0)
		if err != nil {
			return err
		}
		v := "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		fmt.Fprintf(io.Stdout, "writ %s\n", v)
		return nil
	}
	return c
}
