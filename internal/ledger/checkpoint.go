package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// KeyFile is the name of the checkpoint signing key inside a data directory.
const KeyFile = "ledger.key"

// Checkpoint is a parsed, signature-checked C2SP tlog-checkpoint.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
	// Note is the signed note exactly as stored and served.
	Note []byte
}

// signCheckpoint produces the signed note for a tree of the given size and root.
func signCheckpoint(s note.Signer, origin string, size uint64, root []byte) ([]byte, error) {
	body := log.Checkpoint{Origin: origin, Size: size, Hash: root}.Marshal()
	return note.Sign(&note.Note{Text: string(body)}, s)
}

// OpenCheckpoint checks a signed checkpoint against the log's verifier and
// returns its contents. Signatures by other keys are ignored, as the
// signed-note spec asks; the log's own signature is required.
func OpenCheckpoint(signed []byte, origin string, v note.Verifier) (Checkpoint, error) {
	cp, _, _, err := log.ParseCheckpoint(signed, origin, v)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint: %w", err)
	}
	return Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: cp.Hash, Note: signed}, nil
}

// NewVerifier parses a note verifier key (name+hash+base64).
func NewVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("verifier key: %w", err)
	}
	return v, nil
}

// LoadOrCreateKey reads the signing key from dir, creating one for origin on
// first use (mode 0600). It returns the signer and its verifier key.
func LoadOrCreateKey(dir, origin string) (*KeyPair, string, error) {
	path := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		skey, _, gerr := note.GenerateKey(rand.Reader, origin)
		if gerr != nil {
			return nil, "", gerr
		}
		f, cerr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if cerr != nil {
			return nil, "", fmt.Errorf("creating signing key: %w", cerr)
		}
		if _, werr := f.WriteString(skey + "\n"); werr != nil {
			f.Close()
			return nil, "", werr
		}
		if serr := f.Sync(); serr != nil {
			f.Close()
			return nil, "", serr
		}
		if cerr := f.Close(); cerr != nil {
			return nil, "", cerr
		}
		b = []byte(skey)
	} else if err != nil {
		return nil, "", fmt.Errorf("reading signing key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, "", fmt.Errorf("signing key %s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	return parseSigner(string(b), origin)
}

// KeyPair is a checkpoint signer that also knows its verifier, so the ledger
// can check the checkpoints it finds in its store at start.
type KeyPair struct {
	note.Signer
	verifier  note.Verifier
	digestKey []byte
}

// Verifier returns the verifier for the signer's key.
func (k *KeyPair) Verifier() note.Verifier { return k.verifier }

// digestKeyLabel names what the key derived from the signing key is for;
// a new use gets a new label, never this one.
const digestKeyLabel = "writ/ledger/digest-key/v1"

// DigestKey returns a 32-byte secret derived from the signing key (HKDF-SHA256,
// info digestKeyLabel), for the keyed digests writ puts in leaves in place of
// plain hashes of bodies (docs/design/ledger.md). Every replica holding the
// signing key derives the same one; it is never written anywhere.
func (k *KeyPair) DigestKey() []byte { return bytes.Clone(k.digestKey) }

// parseSigner parses a note signer key. The error never includes the key.
func parseSigner(skey, origin string) (*KeyPair, string, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, "", errors.New("signing key file is not a valid note signer key")
	}
	if s.Name() != origin {
		return nil, "", fmt.Errorf("signing key is for log %q, but this ledger's origin is %q", s.Name(), origin)
	}
	vkey, err := verifierKeyOf(strings.TrimSpace(skey))
	if err != nil {
		return nil, "", err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, "", err
	}
	dk, err := deriveDigestKey(strings.TrimSpace(skey))
	if err != nil {
		return nil, "", err
	}
	return &KeyPair{Signer: s, verifier: v, digestKey: dk}, vkey, nil
}

// NewKeyPair parses a note signer key ("PRIVATE+KEY+…") into a KeyPair.
func NewKeyPair(skey string) (*KeyPair, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, errors.New("not a valid note signer key")
	}
	kp, _, err := parseSigner(skey, s.Name())
	return kp, err
}

// verifierKeyOf derives "name+hash+base64(0x01||pub)" from a signer key
// "PRIVATE+KEY+name+hash+base64(0x01||seed)".
func verifierKeyOf(skey string) (string, error) {
	bad := errors.New("signing key file is not a valid Ed25519 note key")
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 {
		return "", bad
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", bad
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}

// deriveDigestKey derives DigestKey from the Ed25519 seed of a signer key
// (already checked by verifierKeyOf).
func deriveDigestKey(skey string) ([]byte, error) {
	parts := strings.SplitN(skey, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize {
		return nil, errors.New("signing key file is not a valid Ed25519 note key")
	}
	return hkdf.Key(sha256.New, raw[1:], nil, digestKeyLabel, 32)
}

// LoadKeyFile reads a signing key from path (as several writ replicas share
// one, from a secret file). An empty origin accepts the key's own name. It
// returns the signer and its verifier key; errors never include the key.
func LoadKeyFile(path, origin string) (*KeyPair, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("reading signing key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, "", fmt.Errorf("signing key %s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	if origin == "" {
		s, err := note.NewSigner(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, "", errors.New("signing key file is not a valid note signer key")
		}
		origin = s.Name()
	}
	return parseSigner(string(b), origin)
}
