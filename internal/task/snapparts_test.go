package task_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
)

// TestSnapshotStreamedInParts: a state encoded a part at a time gives, put
// together, the bytes encoded whole, each part but the last of the part
// size, whatever that size.
func TestSnapshotStreamedInParts(t *testing.T) {
	e := newEnv(t, "prod")
	mix(t, e, 300, 9)
	ents := e.entries()
	last, now := uint64(len(ents)-1), e.clk.Now()
	want := task.EncodeSnapshot(replay(task.NewState(), ents), last, now)
	for _, size := range []int{1, 7, 64, 1000, len(want) - 1, len(want), len(want) + 1, 1 << 20} {
		restore := task.SetSnapshotPartSize(size)
		parts, sum, err := task.StreamSnapshot(replay(task.NewState(), ents), last, now)
		restore()
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Join(parts, nil); !bytes.Equal(got, want) {
			t.Fatalf("part size %d: %d parts, %d bytes, differ from the %d bytes encoded whole", size, len(parts), len(got), len(want))
		}
		if s := sha256.Sum256(want); !bytes.Equal(sum, s[:]) {
			t.Errorf("part size %d: the sum is not the SHA-256 of the bytes", size)
		}
		for i, p := range parts {
			if len(p) == 0 || len(p) > size || (i < len(parts)-1 && len(p) != size) {
				t.Fatalf("part size %d: part %d of %d holds %d bytes", size, i, len(parts), len(p))
			}
		}
	}
}

// TestSnapshotPartsChecked: a snapshot stored in many parts is loaded
// whole; one with a part missing, moved, changed or added is not used (the
// start replays, to the same state), and `writ ledger verify` reports it.
func TestSnapshotPartsChecked(t *testing.T) {
	ctx := context.Background()
	// Registered before the env, so restored after its last Close.
	t.Cleanup(task.SetSnapshotPartSize(100))
	e := newEnv(t, "prod")
	mix(t, e, 300, 6)
	if err := e.reopen(task.Config{SnapshotInterval: -1}); err != nil {
		t.Fatal(err)
	}
	want := task.StateBytes(e.svc, e.clk.Now())
	check := func(t *testing.T, logs string, loaded bool) {
		t.Helper()
		if got := strings.Contains(logs, "task state loaded from its snapshot"); got != loaded {
			t.Errorf("loaded from the snapshot: %v, want %v:\n%s", got, loaded, logs)
		}
		if !loaded && !strings.Contains(logs, "snapshot is not used") {
			t.Errorf("the start does not say why it replays:\n%s", logs)
		}
		if !bytes.Equal(task.StateBytes(e.svc, e.clk.Now()), want) {
			t.Error("the state differs from a full replay's")
		}
	}
	start := func(t *testing.T) string {
		t.Helper()
		logs := &testkit.Buffer{}
		if err := e.open(task.Config{Logger: slog.New(slog.NewTextHandler(logs, nil))}); err != nil {
			t.Fatal(err)
		}
		return logs.String()
	}
	e.close()
	if err := e.open(task.Config{}); err != nil { // writes a snapshot at Close
		t.Fatal(err)
	}
	e.close()
	logs := start(t)
	check(t, logs, true)
	parts, err := task.SnapshotParts(e.svc)
	if err != nil || parts < 10 {
		t.Fatalf("the snapshot is in %d parts (%v); want 10 or more", parts, err)
	}
	if c, err := task.CheckLedger(ctx, e.store, e.store.DB()); err != nil || len(c.Projections) != 0 {
		t.Errorf("CheckLedger = %q, %v", c.Projections, err)
	}
	e.close()

	for _, tc := range []struct {
		name string
		sql  []string
	}{
		{"part missing", []string{`DELETE FROM task_snapshot_part WHERE part = 3`}},
		{"last part missing", []string{`DELETE FROM task_snapshot_part WHERE part = (SELECT max(part) FROM task_snapshot_part)`}},
		{"parts swapped", []string{
			`UPDATE task_snapshot_part SET part = -1 WHERE part = 2`,
			`UPDATE task_snapshot_part SET part = 2 WHERE part = 3`,
			`UPDATE task_snapshot_part SET part = 3 WHERE part = -1`}},
		{"part changed", []string{`UPDATE task_snapshot_part SET data = CAST(x'ff' || substr(data, 2) AS BLOB) WHERE part = 4`}},
		{"part added", []string{`INSERT INTO task_snapshot_part (part, data) SELECT max(part) + 1, x'00' FROM task_snapshot_part`}},
		{"parts numbered from 1", []string{`UPDATE task_snapshot_part SET part = part + 1000`, `UPDATE task_snapshot_part SET part = part - 999`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.open(task.Config{SnapshotInterval: -1}); err != nil {
				t.Fatal(err)
			}
			for _, q := range tc.sql {
				if _, err := e.store.DB().ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			c, err := task.CheckLedger(ctx, e.store, e.store.DB())
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Projections) == 0 {
				t.Error("CheckLedger found nothing wrong with the snapshot")
			}
			e.close()
			check(t, start(t), false)
			e.close() // writes a good snapshot again
			check(t, start(t), true)
			e.close()
		})
	}
}

// TestOldSnapshotRowNotUsed: a row of the encoding before parts — its
// state in the row itself — is not used: the start replays, and writes a
// snapshot of this version.
func TestOldSnapshotRowNotUsed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "prod")
	mix(t, e, 100, 2)
	if err := e.reopen(task.Config{SnapshotInterval: -1}); err != nil {
		t.Fatal(err)
	}
	_, err := e.store.DB().ExecContext(ctx, `UPDATE task_snapshot SET version = 3, state = x'0102'`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.DB().ExecContext(ctx, `DELETE FROM task_snapshot_part`); err != nil {
		t.Fatal(err)
	}
	if c, err := task.CheckLedger(ctx, e.store, e.store.DB()); err != nil || len(c.Projections) != 0 {
		t.Errorf("CheckLedger on an old row = %q, %v; want it left alone", c.Projections, err)
	}
	logs := &testkit.Buffer{}
	if err := e.reopen(task.Config{Logger: slog.New(slog.NewTextHandler(logs, nil))}); err != nil {
		t.Fatal(err)
	}
	if s := logs.String(); !strings.Contains(s, "version 3") || strings.Contains(s, "loaded from its snapshot") {
		t.Errorf("a start on an old row:\n%s", s)
	}
	e.close()
	logs = &testkit.Buffer{}
	if err := e.open(task.Config{Logger: slog.New(slog.NewTextHandler(logs, nil))}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "task state loaded from its snapshot") {
		t.Errorf("the start after did not load the snapshot written at Close:\n%s", logs.String())
	}
}
