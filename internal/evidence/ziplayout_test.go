package evidence_test

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/evidence"
)

// TestZipSmuggling hides files that a streaming extractor would show
// (reading local headers front to back) but that the central directory,
// and so archive/zip, does not list. Each bundle still reads cleanly with
// archive/zip; Verify must refuse every one.
func TestZipSmuggling(t *testing.T) {
	e := newEnv(t, "prod")
	good := e.export(e.story(2), evidence.Options{})
	forged := localEntry("events.jsonl", []byte(`{"type":"task.completed"}`+"\n"))

	cases := map[string][]byte{
		// A forged entry just before the central directory, the end
		// record's offset moved past it.
		"entry before the central directory": func() []byte {
			cd := cdOffset(t, good)
			b := append(append(append([]byte{}, good[:cd]...), forged...), good[cd:]...)
			setCDOffset(b, cd+uint32(len(forged)))
			return b
		}(),
		// Prepended: archive/zip finds the directory by its size and
		// accepts bytes in front of the first entry.
		"entry before the first entry": append(append([]byte{}, forged...), good...),
		"bytes after the end record":   append(append([]byte{}, good...), forged...),
		// An entry whose deflate stream ends early, with a whole local
		// entry inside its stated compressed size.
		"entry inside another's data": rawBundle(t, unzip(t, good), evidence.ManifestPath, forged),
		// A local header whose name differs from the central directory's.
		"local header renamed": func() []byte {
			b := append([]byte{}, good...)
			i := bytes.Index(b, []byte("report.html"))
			if i < 0 || binary.LittleEndian.Uint32(b[i-30:]) != 0x04034b50 {
				t.Fatal("report.html's local header not found")
			}
			copy(b[i:], "rEport.html")
			return b
		}(),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := zip.NewReader(bytes.NewReader(b), int64(len(b))); err != nil {
				t.Fatalf("archive/zip refuses it already (%v): the case tests nothing", err)
			}
			_, err := evidence.Verify(bytes.NewReader(b), int64(len(b)), evidence.VerifyOptions{Key: e.vkey})
			if err == nil || !strings.Contains(err.Error(), "zip layout") {
				t.Fatalf("Verify: %v, want a zip layout refusal", err)
			}
		})
	}

	// The untouched bundle, and one rewritten by archive/zip with a stored
	// entry and no data descriptors, still verify.
	for name, b := range map[string][]byte{"as exported": good, "rewritten": rawBundle(t, unzip(t, good), "", nil)} {
		if r := verify(t, b, evidence.VerifyOptions{Key: e.vkey}); !r.OK() {
			t.Errorf("%s: %+v", name, r.Failures)
		}
	}
}

// localEntry is a stored zip entry's local header and data.
func localEntry(name string, data []byte) []byte {
	h := make([]byte, 30, 30+len(name)+len(data))
	le := binary.LittleEndian
	le.PutUint32(h, 0x04034b50)
	le.PutUint16(h[4:], 20)
	le.PutUint32(h[14:], crc32.ChecksumIEEE(data))
	le.PutUint32(h[18:], uint32(len(data)))
	le.PutUint32(h[22:], uint32(len(data)))
	le.PutUint16(h[26:], uint16(len(name)))
	return append(append(h, name...), data...)
}

func cdOffset(t *testing.T, b []byte) uint32 {
	end := b[len(b)-22:]
	if binary.LittleEndian.Uint32(end) != 0x06054b50 {
		t.Fatal("no end record at the end of the bundle")
	}
	return binary.LittleEndian.Uint32(end[16:])
}

func setCDOffset(b []byte, off uint32) { binary.LittleEndian.PutUint32(b[len(b)-6:], off) }

// rawBundle writes files with CreateRaw: each deflated without a data
// descriptor, and the file named hide with extra bytes after the end of
// its deflate stream, inside its stated compressed size.
func rawBundle(t *testing.T, files map[string][]byte, hide string, extra []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, p := range slices.Sorted(maps.Keys(files)) {
		data := files[p]
		var c bytes.Buffer
		fw, _ := flate.NewWriter(&c, flate.BestSpeed)
		fw.Write(data)
		fw.Close()
		if p == hide {
			c.Write(extra)
		}
		w, err := zw.CreateRaw(&zip.FileHeader{Name: p, Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(data),
			CompressedSize64: uint64(c.Len()), UncompressedSize64: uint64(len(data))})
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(w, &c)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
