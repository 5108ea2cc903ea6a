package task

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
)

// TestMACIsHMAC: mac is HMAC-SHA256 under the digest key of label, 0, the
// task ID, 0 and the body, in hex after MACPrefix, whatever the lengths
// and however many callers share the service's hashes.
func TestMACIsHMAC(t *testing.T) {
	key := []byte(strings.Repeat("k", MinDigestKeyBytes))
	s := &Service{cfg: Config{DigestKey: key}}
	want := func(label, taskID string, body []byte) string {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(label + "\x00" + taskID + "\x00"))
		h.Write(body)
		return MACPrefix + hex.EncodeToString(h.Sum(nil))
	}
	cases := []struct {
		label, taskID string
		body          []byte
	}{
		{macArguments, "tsk_1", []byte(`{"a":1}`)},
		{macOutput, "tsk_1", []byte(`{"a":1}`)},
		{macArguments, "tsk_2", nil},
		{macArguments, strings.Repeat("t", 300), []byte(strings.Repeat("b", 5000))},
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				for _, c := range cases {
					if got, w := s.mac(c.label, c.taskID, c.body), want(c.label, c.taskID, c.body); got != w {
						t.Errorf("mac(%s, %.20s…) = %s, want %s", c.label, c.taskID, got, w)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
