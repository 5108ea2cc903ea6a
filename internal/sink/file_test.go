package sink

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCompleteLines: whatever a file holds when a file sink opens it, what
// is left is its longest prefix that ends in a newline (or nothing).
func FuzzCompleteLines(f *testing.F) {
	f.Add([]byte("{\"index\":0}\n{\"index\":1}\n"))
	f.Add([]byte("{\"index\":0}\n{\"ind"))
	f.Add([]byte("no newline at all"))
	f.Add(bytes.Repeat([]byte("x"), 5000))
	f.Add(append(bytes.Repeat([]byte("y"), 5000), '\n', 'z'))
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(t.TempDir(), "events.jsonl")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		s := &fileSink{path: path, maxBytes: 1 << 20, maxFiles: 1}
		if err := s.open(); err != nil {
			t.Fatal(err)
		}
		defer s.close()
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := content[:bytes.LastIndexByte(content, '\n')+1]
		if !bytes.Equal(got, want) || s.size != int64(len(want)) {
			t.Fatalf("left %q (size %d), want %q", got, s.size, want)
		}
	})
}
