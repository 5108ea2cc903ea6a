package server

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/writhq/writ/api"
)

// TestAppendAuthorizedIsEncodingJSON: the decision API's answer, in every
// shape it takes and with strings that need escaping, is written as
// encoding/json writes it (Write's encoder, less its newline).
func TestAppendAuthorizedIsEncodingJSON(t *testing.T) {
	yes, no := true, false
	for _, s := range []string{"plain", `q"uo\te<>&` + "\n\x00\x7f", "bad \xff utf-8", "sep\u2028é😀", ""} {
		// Every field set, so that one added to the type and not to
		// appendAuthorized shows.
		var full api.Authorized
		v := reflect.ValueOf(&full).Elem()
		for i := range v.NumField() {
			switch f := v.Field(i); f.Kind() {
			case reflect.String:
				f.SetString(s)
			case reflect.Bool:
				f.SetBool(true)
			case reflect.Slice:
				f.Set(reflect.ValueOf([]string{s, "x"}))
			case reflect.Pointer:
				f.Set(reflect.ValueOf(&no))
			default:
				t.Fatalf("no filler for field %s", v.Type().Field(i).Name)
			}
		}
		for _, a := range []api.Authorized{
			full,
			{},
			{Allow: true, ActionID: s, DecisionID: s, RecordOutput: &yes},
			{Allow: false, DecisionID: s, Reasons: []string{s, ""}},
			{DecisionID: s, Reasons: []string{}, ApprovalRequired: true, ApprovalID: s, RecordOutput: &no, Redact: []string{s}},
			{Allow: true, ActionID: s, DecisionID: s, Reasons: []string{s}, ApprovalRequired: true, ApprovalID: s,
				RecordOutput: &yes, Redact: []string{"arguments.x", s}},
		} {
			want, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendAuthorized(nil, &a); !bytes.Equal(got, want) {
				t.Errorf("%+v:\nappendAuthorized %s\nencoding/json    %s", a, got, want)
			}
		}
	}
}
