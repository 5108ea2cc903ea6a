package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/client"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/ledger"
)

// appender commits events at consecutive indexes, in order, and returns the
// first index: locally or through a server.
type appender func(ctx context.Context, events []ledger.Event) (uint64, error)

// target is where ledger writes go: the data directory (when no server holds
// it) or a running server.
type target struct {
	server string
	token  string
}

func (t *target) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&t.server, "server", "", "write through the running server at `URL` (needs an admin token) instead of the data directory")
	fs.StringVar(&t.token, "token", "", "bearer `token` for --server (or WRIT_TOKEN)")
}

func (t *target) client(io IO) *client.Client {
	tok := t.token
	if tok == "" {
		tok = io.Getenv("WRIT_TOKEN")
	}
	return client.New(t.server, tok)
}

// openLocal opens the data directory for writing and starts a ledger on it.
func openLocal(ctx context.Context, cfg config.Config) (*ledger.Ledger, func() error, error) {
	l, _, closeFn, err := openLocalStore(ctx, cfg)
	return l, closeFn, err
}

// openLocalStore is openLocal that also returns the ledger's store.
func openLocalStore(ctx context.Context, cfg config.Config) (*ledger.Ledger, ledger.Store, func() error, error) {
	o, err := storeOptions(cfg, true)
	if err != nil {
		return nil, nil, nil, err
	}
	d, err := datadir.Open(ctx, cfg.DataDir, o)
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
		CommitDelay: cfg.Ledger.CommitDelay,
	})
	if err != nil {
		d.Close()
		return nil, nil, nil, err
	}
	return l, d.Store, func() error {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return errors.Join(l.Close(cctx), d.Close())
	}, nil
}

// open returns an appender and a function that releases it.
func (t *target) open(ctx context.Context, io IO, cfg config.Config) (appender, func() error, error) {
	if t.server != "" {
		cl := t.client(io)
		return func(ctx context.Context, events []ledger.Event) (uint64, error) {
			wire := make([]api.Event, len(events))
			for i, e := range events {
				wire[i] = toWire(e)
			}
			first, err := cl.AppendEvents(ctx, wire)
			// The server names the line (= event, as sent) it refused.
			var ce *client.Error
			if errors.As(err, &ce) && ce.Body.Line > 0 && ce.Body.Line <= len(events) {
				return 0, &ledger.ValidationError{Reason: strings.TrimPrefix(ce.Body.Detail, "invalid event: "), Item: ce.Body.Line - 1}
			}
			return first, err
		}, func() error { return nil }, nil
	}
	l, closeFn, err := openLocal(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return l.AppendAll, closeFn, nil
}

func toWire(e ledger.Event) api.Event {
	w := api.Event{
		Type: e.Type, TaskID: e.TaskID, Principal: e.Principal, Agent: e.Agent, DecisionID: e.DecisionID,
		PolicyVersion: e.PolicyVersion, JTI: e.JTI, TraceID: e.TraceID, Data: e.Data,
	}
	if len(e.Bodies) > 0 {
		w.Bodies = make(map[string]string, len(e.Bodies))
		for k, v := range e.Bodies {
			w.Bodies[k] = string(v)
		}
	}
	return w
}

func ledgerAppendCommand() *command {
	c := &command{name: "append", args: "[--data-dir DIR | --server URL] [-o table|json] < events.jsonl",
		summary: "append other systems' events (type import.<lowercase.dotted.name>; writ's own types are refused) from newline-delimited JSON on stdin, printing each one's index"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		cf := addConfigFlags(fs)
		var t target
		t.addFlags(fs)
		out := fs.String("o", "table", "output `format`: table (one index per line) or json")
		_, err := parseArgs(c, fs, args, 0, 0)
		if err != nil {
			return err
		}
		if err := checkOutput(*out); err != nil {
			return err
		}
		cfg, err := cf.load(io)
		if err != nil {
			return err
		}
		app, closeFn, err := t.open(ctx, io, cfg)
		if err != nil {
			return err
		}
		err = appendStream(ctx, io, app, *out == "json")
		return errors.Join(err, closeFn())
	}
	return c
}

// maxChunk is the most events appended in one call.
const maxChunk = 512

type line struct {
	n   int
	raw []byte
}

// appendStream reads events line by line and appends them in input order,
// so line k gets a smaller index than line k+1. Lines that arrive while a
// chunk commits form the next chunk, which keeps throughput up without
// reordering. It stops at the first invalid line: every line printed before
// the error was appended; nothing after it was.
func appendStream(ctx context.Context, io IO, app appender, asJSON bool) error {
	lines := make(chan line, 4*maxChunk)
	readErr := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(io.Stdin)
		sc.Buffer(make([]byte, 0, 64<<10), ledger.MaxInputBytes+1)
		n := 0
		for sc.Scan() {
			n++
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue
			}
			select {
			case lines <- line{n, bytes.Clone(sc.Bytes())}:
			case <-ctx.Done():
				readErr <- nil
				return
			}
		}
		err := sc.Err()
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line %d is longer than %d bytes", n+1, ledger.MaxInputBytes)
		} else if err != nil {
			err = fmt.Errorf("reading stdin after line %d: %w", n, err)
		}
		readErr <- err
	}()
	w := bufio.NewWriter(io.Stdout)
	defer w.Flush()
	for {
		chunk, ok := nextChunk(lines)
		if !ok {
			break
		}
		events := make([]ledger.Event, 0, len(chunk))
		var bad error
		for _, l := range chunk {
			e, err := ledger.DecodeEvent(l.raw)
			if err != nil {
				bad = fmt.Errorf("line %d: %w", l.n, err)
				break
			}
			events = append(events, e)
		}
		if len(events) > 0 {
			first, err := app(ctx, events)
			var ve *ledger.ValidationError
			if errors.As(err, &ve) && ve.Item < len(events) {
				// Append the valid lines before the bad one, then stop there.
				bad = fmt.Errorf("line %d: %w", chunk[ve.Item].n, err)
				events = events[:ve.Item]
				err = nil
				if len(events) > 0 {
					first, err = app(ctx, events)
				}
			}
			if err != nil {
				return withHint(err, "the indexes printed so far were appended; nothing after them was")
			}
			for i := range events {
				if asJSON {
					fmt.Fprintf(w, "{\"line\":%d,\"index\":%d}\n", chunk[i].n, first+uint64(i))
				} else {
					fmt.Fprintf(w, "%d\n", first+uint64(i))
				}
			}
			w.Flush()
		}
		if bad != nil {
			return withHint(bad, "each line is one JSON event such as {\"type\":\"import.siem.alert\",\"data\":{…}} (only import.* types: writ's own types are written by writ alone); the lines before it were appended (their indexes are printed)")
		}
	}
	return <-readErr
}

// nextChunk waits for one line, then takes whatever else is already waiting,
// up to maxChunk.
func nextChunk(lines <-chan line) ([]line, bool) {
	l, ok := <-lines
	if !ok {
		return nil, false
	}
	chunk := []line{l}
	for len(chunk) < maxChunk {
		select {
		case l, ok := <-lines:
			if !ok {
				return chunk, true
			}
			chunk = append(chunk, l)
		default:
			return chunk, true
		}
	}
	return chunk, true
}

// errLegalHold refuses a local erasure of a held body.
var errLegalHold = errors.New("legal hold")

// eraseLocal erases a body of a data directory's ledger, respecting legal
// holds as the server does: it reads them by replaying the ledger.
func eraseLocal(ctx context.Context, l *ledger.Ledger, st ledger.Store, ref ledger.BodyRef, reason string, force bool) (uint64, error) {
	leaves, err := st.ReadLeaves(ctx, ref.Index, ref.Index+1)
	if err != nil {
		return 0, err
	}
	if len(leaves) == 0 {
		return 0, fmt.Errorf("event %d: %w", ref.Index, ledger.ErrNotFound)
	}
	ent, err := ledger.ParseLeaf(ref.Index, leaves[0])
	if err != nil {
		return 0, err
	}
	x := ledger.Erasure{Ref: ref, Reason: reason}
	if ent.Event.TaskID != "" {
		s, err := replayState(ctx, st)
		if err != nil {
			return 0, err
		}
		if h, on, held := s.HoldOn(ent.Event.TaskID); held {
			if !force {
				return 0, withHint(fmt.Errorf("%w: task %s is under the legal hold of task %s (event %d, by %s): its bodies are not erased",
					errLegalHold, ent.Event.TaskID, on, h.Index, h.By), "an admin may override the hold with --force, which the erasure records")
			}
			i := h.Index
			x.OverridesHold = &i
		}
	}
	return l.EraseAll(ctx, []ledger.Erasure{x})
}

func ledgerEraseCommand() *command {
	c := &command{name: "erase", args: "<index> <body-name> --reason TEXT [--force] [--data-dir DIR | --server URL]",
		summary: "erase one payload body; the tree still verifies and the erasure is recorded"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		cf := addConfigFlags(fs)
		var t target
		t.addFlags(fs)
		reason := fs.String("reason", "", "why the body is erased (recorded in the ledger; required)")
		force := fs.Bool("force", false, "erase a body under a legal hold (admin); the erasure records the hold it overrides")
		pos, err := parseArgs(c, fs, args, 2, 2)
		if err != nil {
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
			idx, err = t.client(io).Erase(ctx, api.Erase{Index: index, Name: pos[1], Reason: *reason, Force: *force})
		} else {
			l, st, closeFn, oerr := openLocalStore(ctx, cfg)
			if oerr != nil {
				return oerr
			}
			idx, err = eraseLocal(ctx, l, st, ledger.BodyRef{Index: index, Name: pos[1]}, *reason, *force)
			err = errors.Join(err, closeFn())
		}
		var ce *client.Error
		if errors.As(err, &ce) && ce.Body.Error == "legal_hold" {
			return withHint(err, "see 'writ report retention'; an admin may override the hold with --force, which the erasure records")
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(io.Stdout, "erased body %q of event %d; erasure recorded as event %d\n", pos[1], index, idx)
		return nil
	}
	return c
}
