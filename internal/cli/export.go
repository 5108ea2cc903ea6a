package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	goio "io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/client"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/task"
)

func exportCommand() *command {
	c := &command{name: "export", args: "<task-id> [--from TIME] [--to TIME] [--out FILE] [--data-dir DIR]",
		summary: "write a task's evidence bundle (zip) for offline verification with 'writ verify'; from a server, or from a data directory"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		af := addAPIFlags(fs, "auditor, admin or the task's requester")
		cf := addConfigFlags(fs)
		from := fs.String("from", "", "keep only actions at or after `TIME` (RFC 3339, or a duration ago such as 24h); the task's lifecycle is always kept")
		to := fs.String("to", "", "keep only actions at or before `TIME` (RFC 3339, or a duration ago)")
		out := fs.String("out", "", "write the bundle to `FILE` (default <task-id>.evidence.zip)")
		pos, err := parseArgs(c, fs, args, 1, 1)
		if err != nil {
			return err
		}
		dst := *out
		if dst == "" {
			dst = pos[0] + ".evidence.zip"
		}
		if cf.isSet("data-dir") || cf.file != "" {
			// Read the data directory itself: no server, no token.
			var opts evidence.Options
			for _, f := range []struct {
				name, v string
				dst     *time.Time
			}{{"from", *from, &opts.From}, {"to", *to, &opts.To}} {
				if f.v == "" {
					continue
				}
				if *f.dst, err = timeFlag(f.name, f.v, time.Now()); err != nil {
					return err
				}
			}
			n, err := exportFromDir(ctx, io, cf, pos[0], opts, dst)
			if err != nil {
				return err
			}
			printWrote(io, dst, n)
			return nil
		}
		cl, err := af.client(io, true)
		if err != nil {
			return err
		}
		q := url.Values{}
		if err := setTimes(q, time.Now(), map[string]string{"from": *from, "to": *to}); err != nil {
			return err
		}
		path := "/v1/tasks/" + url.PathEscape(pos[0]) + "/evidence"
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		n, err := download(ctx, cl.BaseURL()+path, af.bearer(io), dst)
		if err != nil {
			return apiError(err, cl.BaseURL())
		}
		printWrote(io, dst, n)
		return nil
	}
	return c
}

func printWrote(io IO, bundle string, n int64) {
	fmt.Fprintf(io.Stdout, "wrote %s (%d bytes)\ncheck it with: writ verify --key \"$(writ ledger key)\" %s\n", bundle, n, bundle)
}

// timeFlag reads the value of the time flag --name, with a usage error
// naming it.
func timeFlag(name, value string, now time.Time) (time.Time, error) {
	t, err := parseWhen(value, now)
	if err != nil {
		return t, &usageError{msg: fmt.Sprintf("--%s: %v", name, err), hint: "use an RFC 3339 time such as 2026-11-25T09:00:00Z, or a duration ago such as 24h"}
	}
	return t, nil
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

// replayState rebuilds the task state from a store's ledger, as the
// server does at start: an event that does not follow from the ones before
// it is left out ('writ ledger verify' lists it).
func replayState(ctx context.Context, st ledger.Store) (*task.State, error) {
	s := task.NewState()
	err := st.ScanLeaves(ctx, 0, func(i uint64, leaf []byte) error {
		e, err := ledger.ParseLeaf(i, leaf)
		if err != nil {
			return err
		}
		s.Replay(e)
		return nil
	})
	if err != nil {
		return nil, withHint(fmt.Errorf("replaying the ledger: %w", err), "run 'writ ledger verify' on the data directory")
	}
	return s, nil
}

// exportFromDir writes a bundle straight from a data directory: the task
// state is rebuilt by replaying the ledger, as the server does at start.
func exportFromDir(ctx context.Context, io IO, cf *configFlags, taskID string, opts evidence.Options, dst string) (int64, error) {
	cfg, d, err := cf.openRead(ctx, io)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	st, err := replayState(ctx, d.Store)
	if err != nil {
		return 0, err
	}
	ps, err := policy.NewDirStore(filepath.Join(cfg.DataDir, "policies"))
	if err != nil {
		return 0, err
	}
	src := evidence.Source{Store: d.Store, VerifierKey: d.VerifierKey, Policies: ps, Tasks: st}
	if err := witnessedSource(cfg, d, &src); err != nil {
		return 0, err
	}
	n, err := writeBundle(dst, func(w goio.Writer) error { return evidence.Export(ctx, src, taskID, opts, w) })
	switch {
	case errors.Is(err, task.ErrNotFound):
		return 0, withHint(err, "check the task ID; this data directory's ledger has no such task")
	case errors.Is(err, evidence.ErrNotCovered):
		return 0, withHint(err, "start the server on this data directory once: it signs a checkpoint over every event at start")
	case err != nil:
		return 0, err
	}
	return n, nil
}

// writeBundle writes a bundle to dst through a temporary file beside it,
// synced and renamed into place once complete, so that a reader never sees
// half a bundle. It returns the bundle's size.
func writeBundle(dst string, write func(w goio.Writer) error) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(dst), ".writ-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	err = write(f)
	var n int64
	if err == nil {
		n, err = f.Seek(0, goio.SeekCurrent)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	return n, os.Rename(f.Name(), dst)
}

// download streams a GET answer into dst (see writeBundle). An error answer
// is returned as a *client.Error.
func download(ctx context.Context, url, token, dst string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Minute}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := &client.Error{Status: resp.StatusCode}
		b, _ := goio.ReadAll(goio.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e.Body) != nil || e.Body.Error == "" {
			e.Body = api.Error{Error: http.StatusText(resp.StatusCode)}
		}
		return 0, e
	}
	return writeBundle(dst, func(w goio.Writer) error {
		if _, err := goio.Copy(w, resp.Body); err != nil {
			return fmt.Errorf("downloading the bundle: %w", err)
		}
		return nil
	})
}
