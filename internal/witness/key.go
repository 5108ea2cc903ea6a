package witness

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// algCosignatureV1 is the signature type byte of an Ed25519 C2SP
// tlog-cosignature/v1 key.
const algCosignatureV1 = 0x04

// cosigLen is the decoded length of a cosignature: key ID, timestamp and
// Ed25519 signature.
const cosigLen = 4 + 8 + ed25519.SignatureSize

// Key is a witness's C2SP tlog-cosignature/v1 verifier key (Ed25519), in
// its signed-note vkey form name+keyid+base64(0x04 || public key). It is a
// note.Verifier, so note.Open accepts the witness's cosignatures with it.
type Key struct {
	name string
	id   uint32
	pub  ed25519.PublicKey
	vkey string
}

var _ note.Verifier = (*Key)(nil)

// ParseKey parses a cosignature/v1 verifier key. The key ID must be the one
// the spec derives: SHA-256(name || "\n" || 0x04 || public key)[:4].
func ParseKey(vkey string) (*Key, error) {
	vkey = strings.TrimSpace(vkey)
	name, rest, ok1 := strings.Cut(vkey, "+")
	hash, b64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 {
		return nil, errors.New("witness key: want name+keyid+base64 (the witness's cosignature/v1 verifier key)")
	}
	if !validName(name) {
		return nil, fmt.Errorf("witness key: name %q must be non-empty, without spaces or '+'", name)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(raw) == 0 {
		return nil, errors.New("witness key: the key material is not base64")
	}
	if raw[0] != algCosignatureV1 {
		if raw[0] == 0x01 {
			return nil, errors.New("witness key: this is a plain Ed25519 note key (type 0x01), not a cosignature/v1 key (type 0x04); use the key the witness prints as its cosignature verifier key")
		}
		return nil, fmt.Errorf("witness key: signature type 0x%02x is not supported; want an Ed25519 cosignature/v1 key (type 0x04)", raw[0])
	}
	if len(raw) != 1+ed25519.PublicKeySize {
		return nil, errors.New("witness key: an Ed25519 cosignature/v1 key holds 33 bytes")
	}
	if len(hash) != 8 || strings.ToLower(hash) != hash {
		return nil, errors.New("witness key: the key ID must be 8 lowercase hex digits")
	}
	id64, err := strconv.ParseUint(hash, 16, 32)
	if err != nil {
		return nil, errors.New("witness key: the key ID must be 8 lowercase hex digits")
	}
	k := &Key{name: name, pub: ed25519.PublicKey(bytes.Clone(raw[1:])), vkey: vkey}
	k.id = keyID(name, raw)
	if uint32(id64) != k.id {
		return nil, fmt.Errorf("witness key: key ID %s does not match the key (want %08x)", hash, k.id)
	}
	return k, nil
}

// NewKey returns the cosignature/v1 verifier key of an Ed25519 public key
// under name.
func NewKey(name string, pub ed25519.PublicKey) (*Key, error) {
	if !validName(name) {
		return nil, fmt.Errorf("witness key: name %q must be non-empty, without spaces or '+'", name)
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("witness key: not an Ed25519 public key")
	}
	raw := append([]byte{algCosignatureV1}, pub...)
	id := keyID(name, raw)
	return ParseKey(fmt.Sprintf("%s+%08x+%s", name, id, base64.StdEncoding.EncodeToString(raw)))
}

func keyID(name string, raw []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write(raw)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// validName is the signed-note rule for key names.
func validName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// Name returns the witness's name, as its cosignature lines carry it.
func (k *Key) Name() string { return k.name }

// KeyHash returns the key ID.
func (k *Key) KeyHash() uint32 { return k.id }

// String returns the vkey.
func (k *Key) String() string { return k.vkey }

// Verify checks sig (a timestamp and an Ed25519 signature, the key ID
// already removed) over the note text msg, as note.Open calls it.
func (k *Key) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig)
	if t > math.MaxInt64 {
		return false
	}
	return ed25519.Verify(k.pub, signedMessage(t, msg), sig[8:])
}

// signedMessage is what a cosignature/v1 signs: a header line, a time line
// and the checkpoint's note text (with its final newline).
func signedMessage(t uint64, body []byte) []byte {
	m := make([]byte, 0, 40+len(body))
	m = append(m, "cosignature/v1\ntime "...)
	m = strconv.AppendUint(m, t, 10)
	m = append(m, '\n')
	return append(m, body...)
}
