package evidence_test

import (
	"bytes"
	"testing"

	"github.com/writhq/writ/internal/evidence"
)

// FuzzVerify feeds Verify arbitrary bytes and altered bundles: it must
// never panic, and never pass anything but the bundle as written.
func FuzzVerify(f *testing.F) {
	e := newEnv(f, "prod")
	id := e.story(1)
	good := e.export(id, evidence.Options{})
	f.Add(good, 0, byte(0))
	f.Add([]byte("PK\x03\x04"), 0, byte(1))
	f.Add(rezip(f, map[string][]byte{evidence.ManifestPath: []byte(`{"format":"writ-evidence-bundle/v1"}`)}, false), 0, byte(0))
	f.Fuzz(func(t *testing.T, b []byte, at int, x byte) {
		b = bytes.Clone(b)
		if len(b) > 0 && x != 0 {
			if at < 0 {
				at = -at
			}
			b[at%len(b)] ^= x
		}
		r, err := evidence.Verify(bytes.NewReader(b), int64(len(b)), evidence.VerifyOptions{Key: e.vkey})
		if err != nil {
			return
		}
		if r.OK() && !bytes.Equal(b, good) {
			// A change the zip format ignores (say, in a header's time)
			// may verify; the contents must then be those written.
			if !sameContents(t, b, good) {
				t.Fatalf("an altered bundle verifies")
			}
		}
	})
}

func sameContents(t *testing.T, a, b []byte) bool {
	fa, fb := unzip(t, a), unzip(t, b)
	if len(fa) != len(fb) {
		return false
	}
	for p, d := range fa {
		if !bytes.Equal(d, fb[p]) {
			return false
		}
	}
	return true
}
