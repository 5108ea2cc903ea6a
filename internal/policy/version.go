package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// versionDomain starts every hashed byte stream, so a policy version can never
// equal the hash of some other writ structure.
const versionDomain = "writ-policy-version-v1\x00"

// Version returns the bundle's version, "sha256:" and 64 lowercase hex digits:
//
//	SHA-256( "writ-policy-version-v1" 0x00
//	         u64be(len(engine)) engine
//	         u64be(number of files)
//	         for each file, sorted by path (bytewise):
//	             u64be(len(path)) path u64be(len(content)) content )
//
// Paths are slash-separated and relative to the bundle root. Every variable
// field is length-prefixed, so no two distinct bundles share a byte stream.
func Version(s Sources) string {
	files := slices.Clone(s.Files)
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	h := sha256.New()
	var n [8]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	h.Write([]byte(versionDomain))
	put([]byte(s.Engine))
	binary.BigEndian.PutUint64(n[:], uint64(len(files)))
	h.Write(n[:])
	for _, f := range files {
		put([]byte(f.Path))
		put(f.Data)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// FileDigest returns "sha256:<hex>" of one file's content.
func FileDigest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// parseVersion checks a version string and returns its hex part.
func parseVersion(v string) (string, error) {
	h, ok := strings.CutPrefix(v, "sha256:")
	if !ok || len(h) != 64 {
		return "", fmt.Errorf("policy version %q: want sha256: and 64 hex digits", v)
	}
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("policy version %q: want lowercase hex digits", v)
		}
	}
	return h, nil
}
