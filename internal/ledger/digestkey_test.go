package ledger

import (
	"bytes"
	"crypto/rand"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// TestDigestKey: the digest key is a function of the signing key alone, so
// replicas sharing the key (and restarts) derive the same one, and another
// signing key another.
func TestDigestKey(t *testing.T) {
	skey, _, err := note.GenerateKey(rand.Reader, "writ.test/log")
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewKeyPair(skey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewKeyPair(skey + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.DigestKey()) != 32 || !bytes.Equal(a.DigestKey(), b.DigestKey()) {
		t.Fatalf("digest keys of one signing key differ or are short: %x %x", a.DigestKey(), b.DigestKey())
	}
	other, _, _ := note.GenerateKey(rand.Reader, "writ.test/log")
	c, err := NewKeyPair(other)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.DigestKey(), c.DigestKey()) {
		t.Error("two signing keys derive one digest key")
	}
	a.DigestKey()[0] ^= 1
	if !bytes.Equal(a.DigestKey(), b.DigestKey()) {
		t.Error("DigestKey hands out its own buffer")
	}
}
