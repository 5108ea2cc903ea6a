package sink

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/ledger"
)

// TestEncodeHandedHash: a message of an entry the ledger handed over with
// its leaf's hash is byte for byte the message of the same entry without
// it (as read from the store, hashed here), in every format, and its
// leaf hash is SHA-256(0x00 || leaf).
func TestEncodeHandedHash(t *testing.T) {
	evs := fixtureEvents(t)
	evs = append(evs, calls(20)...)
	ents := handed(t, evs)
	for _, format := range []string{config.FormatWrit, config.FormatCloudEvents, config.FormatOCSF} {
		withHash, without := newEncoder(format, benchOrigin), newEncoder(format, benchOrigin)
		hashed := 0
		for _, ent := range ents {
			if ent.Hash != nil {
				hashed++
			}
			got, err := withHash.encode(ent)
			if err != nil {
				t.Fatal(err)
			}
			ent.Hash = nil
			want, err := without.encode(ent)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("%s, entry %d: the message with the handed hash differs (-hashed here +handed):\n%s", format, ent.Index, diff)
			}
			sum := sha256.Sum256(append([]byte{0}, ent.Leaf...))
			if got.LeafHash != hex.EncodeToString(sum[:]) {
				t.Fatalf("%s, entry %d: leaf hash %s, SHA-256(0x00 || leaf) is %x", format, ent.Index, got.LeafHash, sum)
			}
		}
		if hashed != len(ents) {
			t.Fatalf("%d of %d entries were handed with their hash", hashed, len(ents))
		}
	}
}

// fixtureEvents are the OCSF mapping's test events: one of every type.
func fixtureEvents(t testing.TB) []ledger.Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "ocsf", "testdata", "entries.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []ledger.Event
	for line := range bytes.Lines(b) {
		var l struct {
			Event ledger.Event `json:"event"`
		}
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l.Event)
	}
	return out
}
