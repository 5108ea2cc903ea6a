package evidence_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
)

// TestBundleWithHoldAndRetention: a task held and released, and a body of
// it erased by retention, exports to a bundle that verifies whole, whose
// controls.csv counts the hold; and the manifest's version of the
// controls mapping is the one the file is rebuilt from.
func TestBundleWithHoldAndRetention(t *testing.T) {
	e := newEnv(t, "prod")
	ctx := context.Background()
	id := e.story(1)
	auditor := human("oidc:test#audrey", identity.RoleAuditor)
	if _, err := e.svc.Hold(ctx, auditor, id, "litigation 2026-14"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Release(ctx, auditor, id, "case closed"); err != nil {
		t.Fatal(err)
	}
	tk, _ := e.svc.Get(id)
	if _, err := e.led.EraseAll(ctx, []ledger.Erasure{{Ref: ledger.BodyRef{Index: tk.RequestedIndex, Name: "intent"},
		Reason: ledger.ReasonRetention, Retention: &ledger.RetentionRule{Type: ledger.TypeTaskRequested, Body: "intent", Keep: "2y", Minimum: "180d"}}}); err != nil {
		t.Fatal(err)
	}
	b := e.export(id, evidence.Options{})
	r := verify(t, b, evidence.VerifyOptions{Key: e.vkey})
	if !r.OK() || r.Erased != 1 || r.Completeness == nil || r.Completeness.Status != evidence.StatusComplete {
		t.Fatalf("bundle with a hold and a retention erasure: %s %+v", failures(r), r.Completeness)
	}
	f := unzip(t, b)
	rows, err := csv.NewReader(bytes.NewReader(f[evidence.ControlsPath])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, row := range rows {
		if row[0] == "NIST CSF 2.0" && row[1] == "RS.AN-06" {
			found = row[3] == "evidenced" && len(strings.Fields(row[4])) == 3 // held, released, erased
		}
	}
	if !found {
		t.Errorf("RS.AN-06 does not count the hold, its release and the erasure:\n%s", f[evidence.ControlsPath])
	}

	for _, tt := range []struct {
		version int
		want    string
	}{
		{1, "controls.csv does not match"},
		{99, "controls_version 99"},
	} {
		g := unzip(t, b)
		setManifest(t, g, func(m *evidence.Manifest) { m.ControlsVersion = tt.version })
		if r := verify(t, rezip(t, g, true), evidence.VerifyOptions{Key: e.vkey}); r.OK() || !strings.Contains(failures(r), tt.want) {
			t.Errorf("controls_version %d: %s", tt.version, failures(r))
		}
	}
}
