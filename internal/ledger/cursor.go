package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Cursors keeps named cursors beside the log: how far a consumer of the
// log has got, kept durably so that it resumes there after a restart, on
// whichever replica runs it. store/sqlite and store/postgres implement it.
type Cursors interface {
	// Cursor returns the named cursor: the index of the first entry its
	// consumer has not applied, 0 when it was never set.
	Cursor(ctx context.Context, name string) (uint64, error)
	// SetCursor moves the named cursor forward to next, durably when it
	// returns nil; a cursor already at next or past it stays. So a
	// process that ran a consumer and lost it to another (replicas whose
	// lock changed hands) cannot move the cursor back over what the other
	// applied since.
	SetCursor(ctx context.Context, name string, next uint64) error
}

// CursorWriteTimeout bounds the write of a cursor that outlives the
// context of the Apply that moves it.
const CursorWriteTimeout = 5 * time.Second

// MaxCursorName is the longest name of a cursor, in bytes.
const MaxCursorName = 128

// CheckCursorName reports a name Cursors do not keep: empty, too long, or
// not printable ASCII.
func CheckCursorName(name string) error {
	if name == "" || len(name) > MaxCursorName {
		return fmt.Errorf("cursor name %q: want 1 to %d bytes", name, MaxCursorName)
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x21 || name[i] > 0x7e {
			return fmt.Errorf("cursor name %q: want printable ASCII without spaces", name)
		}
	}
	return nil
}

// CursorConsumer returns a Consumer that applies entries with apply and
// keeps its position as the cursor name in c. The cursor moves only once
// apply has returned nil, so every entry is applied at least once: after a
// crash, or an error recording the cursor, apply sees entries again.
//
// Entries applied are recorded even when ctx ends meanwhile (a stop), with
// a context of their own bounded by CursorWriteTimeout: a consumer that
// stops gracefully leaves its cursor past everything apply accepted, so
// whoever resumes it does not apply them again.
func CursorConsumer(c Cursors, name string, apply func(ctx context.Context, entries []Entry) error) (Consumer, error) {
	if c == nil || apply == nil {
		return nil, errors.New("ledger: a cursor consumer needs its cursors and an apply function")
	}
	if err := CheckCursorName(name); err != nil {
		return nil, err
	}
	return &cursorConsumer{c: c, name: name, apply: apply}, nil
}

type cursorConsumer struct {
	c     Cursors
	name  string
	apply func(context.Context, []Entry) error
}

func (k *cursorConsumer) Position(ctx context.Context) (uint64, error) {
	return k.c.Cursor(ctx, k.name)
}

func (k *cursorConsumer) Apply(ctx context.Context, entries []Entry) (uint64, error) {
	first := entries[0].Index
	if err := k.apply(ctx, entries); err != nil {
		return first, err
	}
	next := entries[len(entries)-1].Index + 1
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CursorWriteTimeout)
	defer cancel()
	if err := k.c.SetCursor(wctx, k.name, next); err != nil {
		return first, fmt.Errorf("recording cursor %s at %d: %w", k.name, next, err)
	}
	return next, nil
}
