package cli

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestEvidenceScripts runs the reconstruction scenarios in testdata/evidence
// (export, verify, queries, reports) against a real server each script
// starts in the background.
func TestEvidenceScripts(t *testing.T) {
	testscript.Run(t, serverScripts("testdata/evidence", map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"zipedit": cmdZipEdit,
	}))
}

// cmdZipEdit replaces text in one file of a zip, leaving the rest (and any
// manifest) alone, as someone altering a bundle by hand would.
//
//	zipedit ZIP PATH OLD NEW
func cmdZipEdit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: zipedit ZIP PATH OLD NEW")
	}
	name := ts.MkAbs(args[0])
	b, err := os.ReadFile(name)
	ts.Check(err)
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	ts.Check(err)
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	found := false
	for _, f := range zr.File {
		rc, err := f.Open()
		ts.Check(err)
		data, err := io.ReadAll(rc)
		rc.Close()
		ts.Check(err)
		if f.Name == args[1] {
			if !strings.Contains(string(data), args[2]) {
				ts.Fatalf("%s holds no %q", args[1], args[2])
			}
			data = []byte(strings.Replace(string(data), args[2], args[3], 1))
			found = true
		}
		w, err := zw.Create(f.Name)
		ts.Check(err)
		w.Write(data)
	}
	ts.Check(zw.Close())
	if !found {
		ts.Fatalf("%s has no %s", args[0], args[1])
	}
	ts.Check(os.WriteFile(name, out.Bytes(), 0o600))
}
