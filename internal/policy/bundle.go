package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/writhq/writ/internal/policy/defaultpack"
)

// File is one source file of a bundle.
type File struct {
	// Path is slash-separated and relative to the bundle root.
	Path string
	Data []byte
}

// Sources is a bundle's engine and files: everything its version covers.
type Sources struct {
	Engine string
	Files  []File
}

// Bundle limits. A bundle is source text; anything larger is a mistake.
const (
	MaxBundleFiles = 1000
	MaxFileBytes   = 4 << 20
	MaxBundleBytes = 32 << 20
)

// LoadDir reads a bundle directory. Hidden files and directories (names
// starting with ".") and editor backups ("~" suffix) are skipped; symbolic
// links and special files are an error, so that what is hashed is what is
// evaluated. engine may be empty: it is then detected from the file names.
func LoadDir(dir, engine string) (Sources, error) {
	return loadFS(os.DirFS(dir), dir, engine)
}

// DefaultPack returns the embedded default pack for engine (rego or cedar).
func DefaultPack(engine string) (Sources, error) {
	fsys, ok := defaultpack.FS(engine)
	if !ok {
		return Sources{}, fmt.Errorf("unknown engine %q: want rego or cedar", engine)
	}
	return loadFS(fsys, "default "+engine+" pack", engine)
}

func loadFS(fsys fs.FS, name, engine string) (Sources, error) {
	var src Sources
	total := 0
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		base := path.Base(p)
		if p != "." && (strings.HasPrefix(base, ".") || strings.HasSuffix(base, "~")) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file (symbolic links are not followed)", p)
		}
		if len(src.Files) == MaxBundleFiles {
			return fmt.Errorf("more than %d files", MaxBundleFiles)
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		if len(data) > MaxFileBytes {
			return fmt.Errorf("%s: larger than %d bytes", p, MaxFileBytes)
		}
		total += len(data)
		if total > MaxBundleBytes {
			return fmt.Errorf("bundle larger than %d bytes", MaxBundleBytes)
		}
		src.Files = append(src.Files, File{Path: p, Data: data})
		return nil
	})
	if err != nil {
		return Sources{}, fmt.Errorf("%w: reading %s: %w", ErrCompile, name, err)
	}
	slices.SortFunc(src.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	src.Engine, err = detectEngine(src.Files, engine)
	if err != nil {
		return Sources{}, fmt.Errorf("%w: %s: %w", ErrCompile, name, err)
	}
	return src, nil
}

// detectEngine returns the configured engine, or the one the files imply.
func detectEngine(files []File, engine string) (string, error) {
	var rego, cedar bool
	for _, f := range files {
		rego = rego || strings.HasSuffix(f.Path, ".rego")
		cedar = cedar || strings.HasSuffix(f.Path, ".cedar")
	}
	switch engine {
	case EngineRego, EngineCedar:
		if engine == EngineRego && !rego || engine == EngineCedar && !cedar {
			return "", fmt.Errorf("engine %s: no .%s files", engine, engine)
		}
		return engine, nil
	case "":
	default:
		return "", fmt.Errorf("unknown engine %q: want rego or cedar", engine)
	}
	switch {
	case rego && cedar:
		return "", errors.New("both .rego and .cedar files: name the engine (policy.engine)")
	case rego:
		return EngineRego, nil
	case cedar:
		return EngineCedar, nil
	}
	return "", errors.New("no .rego or .cedar files")
}

// validPath reports whether p is a clean, relative, slash-separated path that
// stays inside the bundle.
func validPath(p string) bool {
	return p != "" && fs.ValidPath(p) && p != "." && !strings.Contains(p, "\\")
}
