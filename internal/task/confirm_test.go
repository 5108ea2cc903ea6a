package task_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
)

// passwordGuesses are the argument and output objects an attacker who knows
// the shape of the call would try, with the true one among them.
var passwordGuesses = []string{
	`{"user":"alice","password":"hunter2"}`,
	`{"password":"hunter2","user":"alice"}`,
	`{"user": "alice", "password": "hunter2"}`,
	`{"user":"alice","password":"hunter1"}`,
	`{"user":"alice","password":"password"}`,
	`{"rows":1,"password":"hunter2"}`,
	`{"password":"hunter2","rows":1}`,
}

// TestRedactedValueCannotBeConfirmed: a redacted password, sent as an
// argument (allowed, and held for a step-up then consumed) and returned in
// an output, cannot be confirmed by hashing candidate objects against any
// leaf, nor against anything the store keeps once its bodies are erased.
func TestRedactedValueCannotBeConfirmed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	cred := e.credential(e.openTask(alice, scope("internal", "dev"), nil).TaskID)
	args := `{"user": "alice", "password": "hunter2"}`
	a, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/17", args), task.Request{})
	if err != nil || !a.Allow {
		t.Fatalf("authorize: %+v, %v", a, err)
	}
	if _, err := e.svc.RecordResult(ctx, cred, a.ActionID, api.ActionResult{Status: "ok", Output: json.RawMessage(`{"rows": 1, "password": "hunter2"}`)}); err != nil {
		t.Fatal(err)
	}
	step := call("invoices.read", "erp://invoices/2026-Q2/9", args)
	e.approve(e.stepUp(cred, step))
	if p, err := e.svc.Authorize(ctx, cred, step, task.Request{}); err != nil || !p.Allow {
		t.Fatalf("approved call: %+v, %v", p, err)
	}
	guesses := testkit.PlainDigests(passwordGuesses...)

	leaves := e.leaves()
	testkit.NoneIn(t, "leaf", guesses, leaves)
	for name, leaf := range leaves {
		if bytes.Contains(leaf, []byte("hunter2")) {
			t.Errorf("leaf %s holds the password", name)
		}
	}

	// Erase every body: nothing left may confirm them.
	for i, leaf := range e.leafList() {
		ent, err := ledger.ParseLeaf(uint64(i), leaf)
		if err != nil {
			t.Fatal(err)
		}
		for name := range ent.Commitments {
			if _, err := e.led.Erase(ctx, ledger.BodyRef{Index: uint64(i), Name: name}, "erasure request", admin.ID); err != nil {
				t.Fatalf("erasing %s of %d: %v", name, i, err)
			}
			if _, err := e.store.ReadBody(ctx, ledger.BodyRef{Index: uint64(i), Name: name}); !errors.Is(err, ledger.ErrNotFound) {
				t.Errorf("body %s of %d (and its salt) after erasure: %v", name, i, err)
			}
		}
	}
	testkit.NoneIn(t, "after erasure, leaf", guesses, e.leaves())
	testkit.NoneIn(t, "after erasure, the store's", guesses, testkit.DumpTables(t, e.store.DB()))
	if err := e.reopen(task.Config{}); err != nil {
		t.Fatalf("restart after erasure: %v", err)
	}
}

func (e *env) leafList() [][]byte {
	e.t.Helper()
	ctx := context.Background()
	size, err := e.store.Size(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	leaves, err := e.store.ReadLeaves(ctx, 0, size)
	if err != nil {
		e.t.Fatal(err)
	}
	return leaves
}

func (e *env) leaves() map[string][]byte {
	out := map[string][]byte{}
	for i, l := range e.leafList() {
		out[fmt.Sprint(i)] = l
	}
	return out
}
