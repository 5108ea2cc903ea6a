package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/client"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/ledger"
)

// appender appends one decoded event, locally or through a server.
type appender func(ctx context.Context, raw []byte) (uint64, error)

// target is where ledger writes go: the data directory (when no server holds
// it) or a running server.
type target struct {
	server string
	token  string
}

func addTargetFlags(c *command, t *target, fs interface {
	StringVar(*string, string, string, string)
}) {
	fs.StringVar(&t.server, "server", "", "write through the running server at `URL` (needs an admin token) instead of the data directory")
	fs.StringVar(&t.token, "token", "", "bearer `token` for --server (or WRIT_TOKEN)")
}

// open returns an appender and a function that releases it.
func (t *target) open(ctx context.Context, io IO, cfg config.Config) (appender, *ledger.Ledger, func() error, error) {
	if t.server != "" {
		tok := t.token
		if tok == "" {
			tok = io.Getenv("WRIT_TOKEN")
		}
		cl := client.New(t.server, tok)
		return func(ctx context.Context, raw []byte) (uint64, error) {
			// Check the shape here for a precise message; the server
			// validates again.
			if _, err := ledger.DecodeEvent(raw); err != nil {
				return 0, err
			}
			var e api.Event
			if err := json.Unmarshal(raw, &e); err != nil {
				return 0, err
			}
			return cl.AppendEvent(ctx, e)
		}, nil, func() error { return nil }, nil
	}
	d, err := datadir.Open(ctx, cfg.DataDir, datadir.Options{Write: true, Origin: cfg.Ledger.Origin})
	if err != nil {
		var le *datadir.LockedError
		if errors.As(err, &le) {
			return nil, nil, nil, withHint(err, "write through the server instead: --server http://%s --token <admin token>", cfg.Listen)
		}
		return nil, nil, nil, err
	}
	l, err := ledger.New(ctx, ledger.Config{
		Store: d.Store, Signer: d.Signer, MaxBodyBytes: cfg.Ledger.MaxBodyBytes,
		MaxBatch: cfg.Ledger.MaxBatch, CheckpointInterval: cfg.Ledger.CheckpointInterval,
	})
	if err != nil {
		d.Close()
		return nil, nil, nil, err
	}
	closeFn := func() error {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return errors.Join(l.Close(cctx), d.Close())
	}
	return func(ctx context.Context, raw []byte) (uint64, error) {
		e, err := ledger.DecodeEvent(raw)
		if err != nil {
			return 0, err
		}
		return l.Append(ctx, e)
	}, l, closeFn, nil
}

func ledgerAppendCommand() *command {
	c := &command{name: "append", args: "[--data-dir DIR | --server URL] [--concurrency N] [-o table|json] < events.jsonl",
		summary: "append newline-delimited JSON events from stdin, printing each one's index"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		cf := addConfigFlags(fs)
		var t target
		addTargetFlags(c, &t, fs)
		conc := fs.Int("concurrency", 64, "events in flight at once (output keeps input order)")
		out := fs.String("o", "table", "output `format`: table (one index per line) or json")
		pos, err := parseFlags(fs, args)
		if err != nil {
			return err
		}
		if err := wantArgs(c, pos, 0, 0); err != nil {
			return err
		}
		if err := checkOutput(*out); err != nil {
			return err
		}
		if *conc < 1 || *conc > 4096 {
			return &usageError{msg: "--concurrency must be 1 to 4096"}
		}
		cfg, err := cf.load(io)
		if err != nil {
			return err
		}
		app, _, closeFn, err := t.open(ctx, io, cfg)
		if err != nil {
			return err
		}
		err = appendStream(ctx, io, app, *conc, *out == "json")
		return errors.Join(err, closeFn())
	}
	return c
}

// appendStream reads events line by line and appends up to conc at once,
// printing results in input order. It stops at the first event that fails:
// every line printed before the error was appended; nothing after it was.
func appendStream(ctx context.Context, io IO, app appender, conc int, asJSON bool) error {
	type pending struct {
		line int
		done chan result
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan pending, conc)
	var readErr error
	go func() {
		defer close(queue)
		sc := bufio.NewScanner(io.Stdin)
		sc.Buffer(make([]byte, 0, 64<<10), ledger.MaxInputBytes+1)
		line := 0
		for sc.Scan() {
			line++
			raw := append([]byte(nil), sc.Bytes()...)
			if len(trimSpace(raw)) == 0 {
				continue
			}
			p := pending{line: line, done: make(chan result, 1)}
			select {
			case queue <- p:
			case <-ctx.Done():
				return
			}
			go func() {
				idx, err := app(ctx, raw)
				p.done <- result{idx, err}
			}()
		}
		if err := sc.Err(); err != nil {
			readErr = fmt.Errorf("reading stdin after line %d: %w", line, err)
			if errors.Is(err, bufio.ErrTooLong) {
				readErr = fmt.Errorf("line %d is longer than %d bytes", line+1, ledger.MaxInputBytes)
			}
		}
	}()
	w := bufio.NewWriter(io.Stdout)
	defer w.Flush()
	var firstErr error
	for p := range queue {
		r := <-p.done
		if firstErr != nil {
			continue // drain; these raced past the failure and are reported below
		}
		if r.err != nil {
			firstErr = fmt.Errorf("line %d: %w", p.line, r.err)
			cancel()
			continue
		}
		if asJSON {
			fmt.Fprintf(w, "{\"line\":%d,\"index\":%d}\n", p.line, r.index)
		} else {
			fmt.Fprintf(w, "%d\n", r.index)
		}
	}
	if firstErr != nil {
		return withHint(firstErr, "each line is one JSON event such as {\"type\":\"import.siem.alert\",\"data\":{...}}; lines before this one were appended (their indexes are printed)")
	}
	return readErr
}

type result struct {
	index uint64
	err   error
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func ledgerEraseCommand() *command {
	c := &command{name: "erase", args: "<index> <body-name> --reason TEXT [--data-dir DIR | --server URL]",
		summary: "erase one payload body; the tree still verifies and the erasure is recorded"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		cf := addConfigFlags(fs)
		var t target
		addTargetFlags(c, &t, fs)
		reason := fs.String("reason", "", "why the body is erased (recorded in the ledger; required)")
		pos, err := parseFlags(fs, args)
		if err != nil {
			return err
		}
		if err := wantArgs(c, pos, 2, 2); err != nil {
			return err
		}
		index, err := parseIndex(pos[0])
		if err != nil {
			return err
		}
		if *reason == "" {
			return &usageError{msg: "--reason is required", hint: "say why, e.g. --reason 'GDPR erasure request 2026-118'"}
		}
		cfg, err := cf.load(io)
		if err != nil {
			return err
		}
		var idx uint64
		if t.server != "" {
			tok := t.token
			if tok == "" {
				tok = io.Getenv("WRIT_TOKEN")
			}
			idx, err = client.New(t.server, tok).Erase(ctx, api.Erase{Index: index, Name: pos[1], Reason: *reason})
		} else {
			_, l, closeFn, oerr := t.open(ctx, io, cfg)
			if oerr != nil {
				return oerr
			}
			idx, err = l.Erase(ctx, ledger.BodyRef{Index: index, Name: pos[1]}, *reason, "")
			err = errors.Join(err, closeFn())
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(io.Stdout, "erased body %q of event %d; erasure recorded as event %d\n", pos[1], index, idx)
		return nil
	}
	return c
}
