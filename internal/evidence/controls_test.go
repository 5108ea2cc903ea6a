package evidence_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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
	for _, want := range []string{"OWASP Top 10 for Agentic Applications (2026)", "CSA MAESTRO", "NIST AI RMF 1.0", "EU AI Act",
		"NIST CSF 2.0", "OWASP Non-Human Identities Top 10 (2025)"} {
		if frameworks[want] == 0 {
			t.Errorf("no controls of %s", want)
		}
	}
	for _, art := range []string{"Art. 12", "Art. 14", "Art. 19", "Art. 26"} {
		if !ids["EU AI Act "+art] {
			t.Errorf("EU AI Act %s is not mapped", art)
		}
	}
	for i := 1; i <= 10; i++ {
		if id := fmt.Sprintf("OWASP Non-Human Identities Top 10 (2025) NHI%d:2025", i); !ids[id] {
			t.Errorf("%s is not mapped", id)
		}
	}
	csfID := regexp.MustCompile(`^(GV|ID|PR|DE|RS|RC)\.[A-Z]{2}-\d{2}$`)
	csf := map[string]bool{}
	for _, c := range cs {
		if c.Framework == "NIST CSF 2.0" {
			if !csfID.MatchString(c.ID) {
				t.Errorf("NIST CSF 2.0 %q is not a subcategory identifier", c.ID)
			}
			csf[c.ID[:2]] = true
		}
	}
	for _, fn := range []string{"GV", "PR", "DE", "RS"} {
		if !csf[fn] {
			t.Errorf("no NIST CSF 2.0 subcategory of %s", fn)
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

// TestControlsMappingV1 keeps the mapping of bundles that name no version
// as it was when they were written: their controls.csv is rebuilt from it.
func TestControlsMappingV1(t *testing.T) {
	b, err := os.ReadFile("controls-v1.csv")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != "50f58bc9d7f2e7d46f22b6e46eb0babfe90eb16c9755be1089f243802393e318" {
		t.Errorf("controls-v1.csv changed (sha256 %s): bundles written with it would no longer verify; change controls.csv and ControlsVersion instead", got)
	}
}
