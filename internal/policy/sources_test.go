package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testStores runs the same contract against every SourceStore.
func testStores(t *testing.T) map[string]SourceStore {
	ds, err := NewDirStore(filepath.Join(t.TempDir(), "policies"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]SourceStore{"dir": ds, "mem": NewMemStore()}
}

func TestSourceStoreContract(t *testing.T) {
	ctx := context.Background()
	src := Sources{Engine: "cedar", Files: []File{{"a.cedar", []byte("permit(principal, action, resource);")}, {"sub/entities.json", []byte("[]")}}}
	v := Version(src)
	for name, s := range testStores(t) {
		t.Run(name, func(t *testing.T) {
			if _, err := s.Get(ctx, v); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get before Put: %v, want ErrNotFound", err)
			}
			if err := s.Put(ctx, Version(Sources{Engine: "rego"}), src); err == nil {
				t.Fatal("Put under the wrong version succeeded")
			}
			if err := s.Put(ctx, v, src); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, v, src); err != nil {
				t.Fatalf("second Put: %v", err)
			}
			got, err := s.Get(ctx, v)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(src, got); diff != "" {
				t.Errorf("Get (-put +got):\n%s", diff)
			}
		})
	}
}

func TestDirStoreDetectsTampering(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := NewDirStore(root)
	if err != nil {
		t.Fatal(err)
	}
	src := Sources{Engine: "rego", Files: []File{{"p.rego", []byte("package writ\n")}}}
	v := Version(src)
	if err := s.Put(ctx, v, src); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, v[len("sha256:"):], "files", "p.rego")
	if err := os.WriteFile(p, []byte("package evil\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, v); err == nil {
		t.Fatal("altered sources were returned")
	}
	if _, err := s.Get(ctx, "sha256:../../etc"); err == nil {
		t.Fatal("malformed version accepted")
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o700)
		if err := os.WriteFile(full, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("b.rego", "package writ")
	write("lib/a.rego", "package lib")
	write(".git/config", "x")
	write("b.rego~", "backup")
	src, err := LoadDir(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range src.Files {
		paths = append(paths, f.Path)
	}
	if diff := cmp.Diff([]string{"b.rego", "lib/a.rego"}, paths); diff != "" || src.Engine != EngineRego {
		t.Errorf("engine %s, paths (-want +got):\n%s", src.Engine, diff)
	}
	write("c.cedar", "permit(principal, action, resource);")
	if _, err := LoadDir(dir, ""); err == nil {
		t.Error("mixed bundle without engine accepted")
	}
	if src, err := LoadDir(dir, EngineCedar); err != nil || src.Engine != EngineCedar {
		t.Errorf("named engine: %v %v", src.Engine, err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link.rego")); err == nil {
		if _, err := LoadDir(dir, EngineRego); err == nil {
			t.Error("symlink followed")
		}
	}
	if _, err := LoadDir(t.TempDir(), ""); err == nil {
		t.Error("empty directory accepted")
	}
}
