package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func exportCommand() *command {
	c := &command{name: "export", args: "<task-id> [--from TIME] [--to TIME] [--out FILE]",
		summary: "download a task's evidence bundle (zip) for offline verification with 'writ verify'"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		af := addAPIFlags(fs, "auditor, admin or the task's requester")
		from := fs.String("from", "", "keep only actions at or after `TIME` (RFC 3339, or a duration ago such as 24h); the task's lifecycle is always kept")
		to := fs.String("to", "", "keep only actions at or before `TIME` (RFC 3339, or a duration ago)")
		out := fs.String("out", "", "write the bundle to `FILE` (default <task-id>.evidence.zip)")
		pos, cl, err := af.parse(c, fs, io, args, 1, 1, true)
		if err != nil {
			return err
		}
		q := url.Values{}
		for _, f := range []struct{ name, v string }{{"from", *from}, {"to", *to}} {
			if f.v == "" {
				continue
			}
			t, err := parseWhen(f.v, time.Now())
			if err != nil {
				return &usageError{msg: fmt.Sprintf("--%s: %v", f.name, err), hint: "use an RFC 3339 time such as 2026-11-25T09:00:00Z, or a duration ago such as 24h"}
			}
			q.Set(f.name, t.Format(time.RFC3339Nano))
		}
		path := "/v1/tasks/" + url.PathEscape(pos[0]) + "/evidence"
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		b, err := cl.Get(ctx, path)
		if err != nil {
			return apiError(err, cl.BaseURL())
		}
		dst := *out
		if dst == "" {
			dst = pos[0] + ".evidence.zip"
		}
		if err := writeFileAtomic(dst, b); err != nil {
			return err
		}
		fmt.Fprintf(io.Stdout, "wrote %s (%d bytes)\ncheck it with: writ verify --key \"$(writ ledger key)\" %s\n", dst, len(b), dst)
		return nil
	}
	return c
}

// parseWhen reads an RFC 3339 time, or a duration before now ("24h").
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	d, err := time.ParseDuration(strings.TrimPrefix(s, "-"))
	if err != nil || d < 0 {
		return time.Time{}, errors.New("not an RFC 3339 time or a duration")
	}
	return now.Add(-d).UTC(), nil
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it into place, so a reader never sees half a file.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".writ-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
