package evidence

import (
	"strings"
	"testing"
)

// TestControlsByVersion: a bundle that names no version of the mapping is
// rebuilt from version 1, one of this version from the current mapping.
func TestControlsByVersion(t *testing.T) {
	old := string(controlsCSV(&view{m: &Manifest{}}))
	cur := string(controlsCSV(&view{m: &Manifest{ControlsVersion: ControlsVersion}}))
	if strings.Contains(old, "NIST CSF 2.0") || !strings.Contains(old, "EU AI Act") {
		t.Errorf("version 1 of the mapping:\n%s", old)
	}
	if !strings.Contains(cur, "NIST CSF 2.0") || !strings.Contains(cur, "NHI1:2025") {
		t.Errorf("the current mapping:\n%s", cur)
	}
	if !strings.Contains(string(reportHTML(&view{m: &Manifest{}})), "CSA MAESTRO,\nthe NIST AI RMF and the EU AI Act, and where") {
		t.Error("report.html of version 1 names other frameworks than it did")
	}
}
