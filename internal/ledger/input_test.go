package ledger

import (
	"errors"
	"strings"
	"testing"
)

// TestDecodeEventRefusesWritsOwnTypes: an event submitted from outside
// (writ ledger append, POST /v1/ledger/events) may not have one of writ's
// own types; the error names the type and the rule.
func TestDecodeEventRefusesWritsOwnTypes(t *testing.T) {
	for _, typ := range Types() {
		_, err := DecodeEvent([]byte(`{"type":"` + typ + `","task_id":"t1","data":{}}`))
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != "type" {
			t.Errorf("type %s: got %v, want a *ValidationError on type", typ, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, `"`+typ+`"`) || !strings.Contains(msg, `"import."`) {
			t.Errorf("type %s: error %q does not name the type and the import rule", typ, msg)
		}
	}
	for _, tt := range []struct {
		typ string
		ok  bool
	}{
		{"import.siem.alert", true}, {"import.a-b_c.9", true},
		{"import.", false}, {"import..a", false}, {"import.a.", false}, {"import.a..b", false},
		{"import.Siem", false}, {"import.a b", false}, {"siem.alert", false}, {"", false},
		{"import." + strings.Repeat("a", MaxImportNameBytes+1), false},
	} {
		_, err := DecodeEvent([]byte(`{"type":"` + tt.typ + `"}`))
		if (err == nil) != tt.ok {
			t.Errorf("type %q: err = %v, want ok=%v", tt.typ, err, tt.ok)
		}
	}
}
