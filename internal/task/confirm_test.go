package task_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/jcs"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/task"
)

// guessDigests returns every spelling of a plain SHA-256 of each candidate
// JSON text, and of its canonical form, that a record could hold: what an
// attacker would compare against to confirm a guess.
func guessDigests(t *testing.T, candidates ...string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, c := range candidates {
		texts := []string{c}
		if canon, err := jcs.Canonicalize([]byte(c)); err == nil {
			texts = append(texts, string(canon))
		}
		for _, s := range texts {
			sum := sha256.Sum256([]byte(s))
			for form, enc := range map[string][]byte{
				"hex":       []byte(hex.EncodeToString(sum[:])),
				"HEX":       []byte(strings.ToUpper(hex.EncodeToString(sum[:]))),
				"base64":    []byte(base64.StdEncoding.EncodeToString(sum[:])),
				"base64url": []byte(base64.RawURLEncoding.EncodeToString(sum[:])),
				"raw":       sum[:],
			} {
				out[fmt.Sprintf("%s of %s", form, s)] = enc
			}
		}
	}
	return out
}

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

// noneIn fails for each guess digest found in any of texts.
func noneIn(t *testing.T, where string, guesses map[string][]byte, texts map[string][]byte) {
	t.Helper()
	for name, text := range texts {
		for g, d := range guesses {
			if bytes.Contains(text, d) {
				t.Errorf("%s %s holds the %s: a guess is confirmed by hashing it", where, name, g)
			}
		}
	}
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
	guesses := guessDigests(t, passwordGuesses...)

	leaves := e.leaves()
	noneIn(t, "leaf", guesses, leaves)
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
	noneIn(t, "after erasure, leaf", guesses, e.leaves())
	noneIn(t, "after erasure, the store's", guesses, dumpTables(t, e.store.DB()))
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

// dumpTables returns every row of every table in db, one text per table.
func dumpTables(t *testing.T, db *sql.DB) map[string][]byte {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	rows.Close()
	out := map[string][]byte{}
	for _, n := range names {
		r, err := db.Query(`SELECT * FROM "` + n + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := r.Columns()
		var buf bytes.Buffer
		for r.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := r.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				fmt.Fprintf(&buf, "%s\x00", v)
			}
		}
		r.Close()
		out["table "+n] = buf.Bytes()
	}
	return out
}
