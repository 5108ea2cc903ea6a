package evidence_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/jcs"
	"github.com/writhq/writ/internal/task"
)

// TestBundleCannotConfirmRedactedValue: a bundle, and the query index
// beside the ledger, hold nothing that confirms a redacted password by
// hashing candidate argument objects: no plain digest of the arguments in
// any file (events.jsonl, ocsf.jsonl, report.html, payloads, proofs) nor
// in any row of the index.
func TestBundleCannotConfirmRedactedValue(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "prod")
	out, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "check a login", Scope: scope("internal", "prod"), TTL: "15m"})
	if err != nil {
		t.Fatal(err)
	}
	cred := e.credential(out.TaskID)
	args := `{"user": "alice", "password": "hunter2"}`
	for _, res := range []string{"erp://invoices/2026-Q3/17", "erp://invoices/2026-Q2/9"} {
		a, err := e.svc.Authorize(ctx, cred, api.Authorize{Tool: "invoices.read", Operation: "read", Resource: res,
			Arguments: json.RawMessage(args), DataClass: "internal"}, task.Request{Gateway: "api"})
		if err != nil {
			t.Fatal(err)
		}
		if a.ApprovalRequired {
			if _, err := e.svc.DecideApproval(ctx, bob, a.ApprovalID, api.Decide{Decision: "approve"}); err != nil {
				t.Fatal(err)
			}
			if a, err = e.svc.Authorize(ctx, cred, api.Authorize{Tool: "invoices.read", Operation: "read", Resource: res,
				Arguments: json.RawMessage(args), DataClass: "internal"}, task.Request{Gateway: "api"}); err != nil || !a.Allow {
				t.Fatalf("approved call: %+v %v", a, err)
			}
		}
		if _, err := e.svc.RecordResult(ctx, cred, a.ActionID, api.ActionResult{Status: "ok", Output: json.RawMessage(`{"ok":true}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.Complete(ctx, alice, out.TaskID); err != nil {
		t.Fatal(err)
	}

	// The candidates are the unredacted arguments. (The output is disclosed
	// as it is, so the manifest's digest of its payload file is no leak.)
	var guesses [][]byte
	for _, c := range []string{args, `{"user":"alice","password":"hunter2"}`, `{"password":"hunter2","user":"alice"}`, `{"user":"alice","password":"hunter1"}`} {
		canon, _ := jcs.Canonicalize([]byte(c))
		for _, s := range []string{c, string(canon)} {
			sum := sha256.Sum256([]byte(s))
			guesses = append(guesses, []byte(hex.EncodeToString(sum[:])), []byte(strings.ToUpper(hex.EncodeToString(sum[:]))),
				[]byte(base64.StdEncoding.EncodeToString(sum[:])), []byte(base64.RawURLEncoding.EncodeToString(sum[:])), sum[:])
		}
	}
	check := func(where string, b []byte) {
		for _, g := range guesses {
			if bytes.Contains(b, g) {
				t.Errorf("%s holds a plain digest of a candidate body (%.16q…)", where, g)
			}
		}
	}
	bundle := e.exportIndexed(out.TaskID)
	for name, b := range unzip(t, bundle) {
		check("bundle file "+name, b)
	}
	if r := verify(t, bundle, evidence.VerifyOptions{}); !r.OK() {
		t.Errorf("the bundle does not verify: %+v", r)
	}
	// The index has caught up (exportIndexed used it): scan its rows.
	rows, err := e.store.DB().QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	for _, tb := range tables {
		r, err := e.store.DB().QueryContext(ctx, `SELECT * FROM "`+tb+`"`)
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
			r.Scan(ptrs...)
			for _, v := range vals {
				fmt.Fprintf(&buf, "%s\x00", v)
			}
		}
		r.Close()
		check("table "+tb, buf.Bytes())
	}
}
