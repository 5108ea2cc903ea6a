package policy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDocumentedGateways: docs/policy.md lists exactly the enforcement
// points writ names in request.gateway, in its schema and its table.
func TestDocumentedGateways(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "policy.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`"gateway": \{"enum": \[([^\]]*)\]\}`).FindSubmatch(doc)
	if m == nil {
		t.Fatal(`docs/policy.md: no "gateway" enum in the schema`)
	}
	var schema []string
	for _, v := range strings.Split(string(m[1]), ",") {
		schema = append(schema, strings.Trim(strings.TrimSpace(v), `"`))
	}
	if diff := cmp.Diff(Gateways, schema); diff != "" {
		t.Errorf("schema's request.gateway (-Gateways +docs):\n%s", diff)
	}
	var table []string
	for _, row := range regexp.MustCompile("(?m)^\\| `([a-z]+)` \\| the [^|]*\\| `[a-z]+`").FindAllSubmatch(doc, -1) {
		table = append(table, string(row[1]))
	}
	if diff := cmp.Diff(Gateways, table); diff != "" {
		t.Errorf("table of enforcement points (-Gateways +docs):\n%s", diff)
	}
}
