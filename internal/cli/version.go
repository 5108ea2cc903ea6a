package cli

import (
	"context"
	"fmt"

	"github.com/writhq/writ/internal/version"
)

func versionCommand() *command {
	c := &command{name: "version", args: "", summary: "print writ's version"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		_, err := parseArgs(c, fs, args, 0, 0)
		if err != nil {
			return err
		}
		fmt.Fprintf(io.Stdout, "writ %s\n", version.String())
		return nil
	}
	return c
}
