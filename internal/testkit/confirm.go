package testkit

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/jcs"
)

// PlainDigests returns every spelling of a plain SHA-256 of each candidate
// JSON text, and of its canonical form, that a record could hold: what an
// attacker would compare against to confirm a guess. Keys name the form
// and the text.
func PlainDigests(candidates ...string) map[string][]byte {
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

// NoneIn fails the test for each digest of guesses found in any of texts.
func NoneIn(t testing.TB, where string, guesses, texts map[string][]byte) {
	t.Helper()
	for name, text := range texts {
		for g, d := range guesses {
			if bytes.Contains(text, d) {
				t.Errorf("%s %s holds the %s: a guess is confirmed by hashing it", where, name, g)
			}
		}
	}
}

// DumpTables returns every row of every table of a SQLite database, one
// text per table, keyed "table NAME".
func DumpTables(t testing.TB, db *sql.DB) map[string][]byte {
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
