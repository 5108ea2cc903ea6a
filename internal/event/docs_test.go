package event_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
)

// docTypes reads the table of docs/ledger.md's "Types" section: each
// event type and the links its row gives to the documentation of its
// fields.
func docTypes(t *testing.T) map[string][]string {
	t.Helper()
	doc := readDoc(t, "ledger.md")
	_, section, ok := strings.Cut(doc, "\n### Types\n")
	if !ok {
		t.Fatal(`docs/ledger.md has no "### Types" section`)
	}
	section, _, _ = strings.Cut(section, "\n#")
	row := regexp.MustCompile("^\\| `([a-z_.]+)` \\|")
	link := regexp.MustCompile(`\]\(([^)]*)\)`)
	out := map[string][]string{}
	for line := range strings.SplitSeq(section, "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if _, dup := out[m[1]]; dup {
			t.Errorf("docs/ledger.md lists %s twice", m[1])
		}
		out[m[1]] = []string{}
		for _, l := range link.FindAllStringSubmatch(line, -1) {
			out[m[1]] = append(out[m[1]], l[1])
		}
	}
	if len(out) == 0 {
		t.Fatal(`docs/ledger.md's "Types" section has no table of types`)
	}
	return out
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// anchors returns the anchors of a Markdown file's headings, as the
// usual renderers make them: lower case, punctuation dropped, spaces as
// hyphens.
func anchors(doc string) map[string]bool {
	out := map[string]bool{}
	for line := range strings.SplitSeq(doc, "\n") {
		h := strings.TrimLeft(line, "#")
		if h == line || !strings.HasPrefix(h, " ") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(h)) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		out[b.String()] = true
	}
	return out
}

// TestDocumentedTypes: the types docs/ledger.md lists are the types the
// ledger takes and this package has data types for, each row links to
// where its fields are documented, and every link leads to a heading that
// exists.
func TestDocumentedTypes(t *testing.T) {
	documented := docTypes(t)
	listed := slices.Sorted(func(yield func(string) bool) {
		for typ := range documented {
			if !yield(typ) {
				return
			}
		}
	})
	if known := slices.Sorted(slices.Values(ledger.Types())); !slices.Equal(listed, known) {
		t.Errorf("docs/ledger.md lists\n%v\nthe ledger takes\n%v", listed, known)
	}
	if !slices.Equal(listed, event.Types()) {
		t.Errorf("docs/ledger.md lists\n%v\npackage event has data types for\n%v", listed, event.Types())
	}
	for _, typ := range event.Types() {
		if len(event.Shapes(typ)) == 0 {
			t.Errorf("%s has no Go type", typ)
		}
	}
	docs := map[string]map[string]bool{}
	for typ, links := range documented {
		if len(links) == 0 && typ != ledger.TypeLedgerStarted {
			t.Errorf("docs/ledger.md does not link the fields of %s", typ)
		}
		for _, l := range links {
			file, anchor, _ := strings.Cut(l, "#")
			if file == "" {
				file = "ledger.md"
			}
			if docs[file] == nil {
				docs[file] = anchors(readDoc(t, file))
			}
			if anchor == "" || !docs[file][anchor] {
				t.Errorf("%s: the link %q leads to no heading of docs/%s", typ, l, file)
			}
		}
	}
}
