package datadir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenCreatesOnceAndKeepsIdentity(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "d")
	if _, err := Open(ctx, dir, Options{}); !errors.Is(err, ErrNoDir) {
		t.Fatalf("read-only open of a missing dir: %v, want ErrNoDir", err)
	}
	d, err := Open(ctx, dir, Options{Write: true, Origin: "example.com/writ"})
	if err != nil {
		t.Fatal(err)
	}
	origin, vkey := d.Origin, d.VerifierKey
	if origin != "example.com/writ" || !strings.HasPrefix(vkey, "example.com/writ+") {
		t.Errorf("origin %q, verifier key %q", origin, vkey)
	}
	fi, err := os.Stat(filepath.Join(dir, "ledger.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("signing key mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}

	// A second writer is refused while the first holds the lock.
	_, err = Open(ctx, dir, Options{Write: true})
	var le *LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() {
		t.Fatalf("second writer: %v, want LockedError naming pid %d", err, os.Getpid())
	}
	// Readers are fine beside it.
	r, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatalf("reader beside the writer: %v", err)
	}
	if r.VerifierKey != vkey || r.Signer != nil {
		t.Errorf("reader sees key %q (signer %v)", r.VerifierKey, r.Signer)
	}
	r.Close()
	d.Close()
	d.Close() // idempotent

	d, err = Open(ctx, dir, Options{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	if d.Origin != origin || d.VerifierKey != vkey {
		t.Errorf("reopen changed identity: %q %q", d.Origin, d.VerifierKey)
	}
	d.Close()
}

func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "d")
	d, err := Open(ctx, dir, Options{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()

	if _, err := Open(ctx, dir, Options{Write: true, Origin: "other.example/log"}); err == nil || !strings.Contains(err.Error(), "cannot change") {
		t.Errorf("changed origin: %v", err)
	}

	key := filepath.Join(dir, "ledger.key")
	b, _ := os.ReadFile(key)
	os.Chmod(key, 0o644)
	if _, err := Open(ctx, dir, Options{Write: true}); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("world-readable key: %v", err)
	}
	os.Remove(key)
	if _, err := Open(ctx, dir, Options{Write: true}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing key: %v (a new key must not be made silently)", err)
	}
	// Another log's key does not match the recorded verifier key.
	other := filepath.Join(t.TempDir(), "o")
	o, err := Open(ctx, other, Options{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	ob, _ := os.ReadFile(filepath.Join(other, "ledger.key"))
	os.WriteFile(key, ob, 0o600)
	if _, err := Open(ctx, dir, Options{Write: true}); err == nil {
		t.Error("a key from another log was accepted")
	}
	os.WriteFile(key, b, 0o600)
	if d, err := Open(ctx, dir, Options{Write: true}); err != nil {
		t.Errorf("the original key, restored: %v", err)
	} else {
		d.Close()
	}
}
