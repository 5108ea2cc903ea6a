package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocumentedSettingsParse loads the "Every setting" example of
// docs/configuration.md as a config file: every key it shows must exist
// (unknown keys are errors), and its values must be valid.
func TestDocumentedSettingsParse(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "## Every setting")
	if !ok {
		t.Fatal(`docs/configuration.md has no "## Every setting" section`)
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no yaml block under Every setting")
	}
	c, err := Load(writeYAML(t, block), nil)
	if err != nil {
		t.Fatalf("the documented settings do not load: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the documented settings do not validate: %v", err)
	}
	if c.Console.SessionTTL == 0 || c.Ledger.CheckpointInterval == 0 {
		t.Errorf("documented values were not read: %+v", c.Console)
	}
}
