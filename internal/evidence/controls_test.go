package evidence_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/ledger"
)

// TestControlsMapping checks the mapping data: every framework the bundle
// promises is there, every event type named exists, and every control writ
// does not establish says why.
func TestControlsMapping(t *testing.T) {
	cs, err := evidence.Controls()
	if err != nil {
		t.Fatal(err)
	}
	frameworks := map[string]int{}
	ids := map[string]bool{}
	for _, c := range cs {
		frameworks[c.Framework]++
		key := c.Framework + " " + c.ID
		if ids[key] {
			t.Errorf("%s appears twice", key)
		}
		ids[key] = true
		for _, typ := range c.EventTypes {
			if typ != "*" && !ledger.KnownType(typ) {
				t.Errorf("%s names unknown event type %q", key, typ)
			}
		}
		if len(c.EventTypes) == 0 && !strings.HasPrefix(c.Note, "Not established") {
			t.Errorf("%s has no evidence but its note does not say it is not established", key)
		}
		if c.Title == "" {
			t.Errorf("%s has no title", key)
		}
	}
	for _, want := range []string{"OWASP Top 10 for Agentic Applications (2026)", "CSA MAESTRO", "NIST AI RMF 1.0", "EU AI Act"} {
		if frameworks[want] == 0 {
			t.Errorf("no controls of %s", want)
		}
	}
	for _, art := range []string{"Art. 12", "Art. 14", "Art. 19", "Art. 26"} {
		if !ids["EU AI Act "+art] {
			t.Errorf("EU AI Act %s is not mapped", art)
		}
	}
	for _, fn := range []string{"GOVERN", "MAP", "MEASURE", "MANAGE"} {
		found := false
		for id := range ids {
			found = found || strings.HasPrefix(id, "NIST AI RMF 1.0 "+fn+" ")
		}
		if !found {
			t.Errorf("no NIST AI RMF %s subcategory", fn)
		}
	}
}

// TestStandardsDocListsEveryControl keeps docs/standards.md in step with
// the mapping data.
func TestStandardsDocListsEveryControl(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "standards.md"))
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := evidence.Controls()
	for _, c := range cs {
		if !strings.Contains(string(doc), "| "+c.ID+" "+c.Title+" |") {
			t.Errorf("docs/standards.md does not list %s %s %s", c.Framework, c.ID, c.Title)
		}
		if c.Note != "" && !strings.Contains(string(doc), strings.ReplaceAll(c.Note, "|", "/")) {
			t.Errorf("docs/standards.md lacks the note of %s %s", c.Framework, c.ID)
		}
	}
}
