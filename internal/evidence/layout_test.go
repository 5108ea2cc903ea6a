package evidence_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/internal/evidence"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestBundleLayout pins the bundle's file list and the manifest's shape.
// Regenerate with: go test ./internal/evidence -run TestBundleLayout -update
func TestBundleLayout(t *testing.T) {
	e := newEnv(t, "prod")
	id := e.story(2)
	f := unzip(t, e.export(id, evidence.Options{}))
	var m evidence.Manifest
	if err := json.Unmarshal(f[evidence.ManifestPath], &m); err != nil {
		t.Fatal(err)
	}
	var pv string
	for v := range m.Policies {
		pv = strings.TrimPrefix(v, "sha256:")
	}
	var b strings.Builder
	b.WriteString("# files\n")
	var paths []string
	seen := map[string]bool{}
	for p := range f {
		// The policy pack's own files are its business, not the layout's.
		p = strings.ReplaceAll(p, pv, "<policy-version>")
		if i := strings.Index(p, "/files/"); strings.HasPrefix(p, "policies/") && i > 0 {
			p = p[:i] + "/files/<policy files>"
		}
		if !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		b.WriteString(p + "\n")
	}
	b.WriteString("\n# manifest.json\n")
	var raw any
	json.Unmarshal(f[evidence.ManifestPath], &raw)
	shape(&b, "", raw)
	got := b.String()
	golden := filepath.Join("testdata", "layout.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("bundle layout changed (-want +got); if intended, run with -update:\n%s", diff)
	}
}

var policyKey = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// shape writes the structure of a JSON value: member names and types, one
// per line, the first element of arrays standing for all.
func shape(b *strings.Builder, path string, v any) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(b, "%s: object\n", or(path, "."))
		seen := map[string]bool{}
		for _, k := range keys {
			name := k
			if policyKey.MatchString(k) {
				name = "<policy-version>"
			}
			if seen[name] {
				continue
			}
			seen[name] = true
			shape(b, path+"."+name, x[k])
		}
	case []any:
		fmt.Fprintf(b, "%s: array\n", path)
		if len(x) > 0 {
			shape(b, path+"[]", x[0])
		}
	case string:
		fmt.Fprintf(b, "%s: string\n", path)
	case float64:
		fmt.Fprintf(b, "%s: number\n", path)
	case bool:
		fmt.Fprintf(b, "%s: bool\n", path)
	case nil:
		fmt.Fprintf(b, "%s: null\n", path)
	}
}

func or(a, b string) string {
	if a == "" {
		return b
	}
	return a
}
