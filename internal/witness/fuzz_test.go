package witness

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// FuzzAnswer: whatever a witness answers, reading it never panics, a
// cosignature comes back only when it verifies, and a 409's size only
// from a well-formed size body.
func FuzzAnswer(f *testing.F) {
	k := newTestKey(f, "witness.example/w1", 1)
	good := k.cosign(testCheckpoint, 1_700_000_000)
	f.Add(200, "text/plain", []byte(good+"\n"))
	f.Add(200, "", []byte(good+"\n"+good+"\n"))
	f.Add(409, "text/x.tlog.size", []byte("42\n"))
	f.Add(409, "text/x.tlog.size; charset=utf-8", []byte("0\n"))
	f.Add(422, "text/plain", []byte("bad consistency proof\n"))
	f.Add(500, "", []byte{0xff, 0xfe})
	c := &Client{URL: "http://w/", Key: k.Key}
	f.Fuzz(func(t *testing.T, status int, ct string, body []byte) {
		cs, err := c.answer(status, ct, body, []byte(testCheckpoint))
		var conflict *ConflictError
		var refused *RefusedError
		switch {
		case err == nil:
			if status != 200 {
				t.Fatalf("status %d gave a cosignature", status)
			}
			if _, verr := k.VerifyLine([]byte(testCheckpoint), cs.Line); verr != nil {
				t.Fatalf("returned a cosignature that does not verify: %v", verr)
			}
		case errors.As(err, &conflict):
			if status != 409 || strconv.FormatUint(conflict.Size, 10)+"\n" != string(body) {
				t.Fatalf("409 size %d from %q", conflict.Size, body)
			}
		case errors.As(err, &refused):
			if status < 400 || status >= 500 || status == 408 || status == 409 || status == 429 {
				t.Fatalf("status %d read as a refusal", status)
			}
			if len([]rune(refused.Detail)) > 201 || strings.ContainsAny(refused.Detail, "\n\x00\x1b") {
				t.Fatalf("refusal detail %q", refused.Detail)
			}
		}
	})
}

// FuzzParseResponse: lines are accepted only in the signed-note syntax.
func FuzzParseResponse(f *testing.F) {
	k := newTestKey(f, "witness.example/w1", 1)
	f.Add([]byte(k.cosign(testCheckpoint, 1) + "\n"))
	f.Add([]byte("\u2014 a AAAAAAAA\n\u2014 b BBBBBBBB\n"))
	f.Add([]byte("\u2014 a\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		lines, err := ParseResponse(body)
		if err != nil {
			return
		}
		if len(lines) == 0 || len(lines) > maxResponseLines {
			t.Fatalf("%d lines", len(lines))
		}
		for _, l := range lines {
			if _, _, err := parseLine(l); err != nil || strings.Contains(l, "\n") {
				t.Fatalf("accepted line %q: %v", l, err)
			}
		}
		if !bytes.Equal([]byte(strings.Join(lines, "\n")+"\n"), body) {
			t.Fatalf("lines %q do not make up %q", lines, body)
		}
	})
}

// FuzzParseSize: a size parses only from its one canonical spelling.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0\n", "42\n", "007\n", "18446744073709551616\n", "1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseSize(b)
		if err == nil && strconv.FormatUint(n, 10)+"\n" != string(b) {
			t.Fatalf("ParseSize(%q) = %d", b, n)
		}
	})
}

// FuzzParseKey: a key that parses prints as it was given.
func FuzzParseKey(f *testing.F) {
	f.Add(newTestKey(f, "witness.example/w1", 1).String())
	f.Add("a+00000000+BAAA")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			return
		}
		if k.String() != strings.TrimSpace(s) {
			t.Fatalf("ParseKey(%q).String() = %q", s, k.String())
		}
		if again, err := ParseKey(k.String()); err != nil || again.KeyHash() != k.KeyHash() {
			t.Fatalf("round trip: %v", err)
		}
	})
}
