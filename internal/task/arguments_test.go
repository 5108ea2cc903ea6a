package task

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzArgumentsAsEncodingJSON: a call's arguments decode to what
// encoding/json decodes them to, and fail where it fails: the policy
// decides on that map, and the record of the call is made from it.
func FuzzArgumentsAsEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"path":"/data/x","n":3,"opts":{"a":true,"b":["x",null,1.5e300]}}`,
		`{"a":1,"a":2,"A":3}`,
		`{"big":123456789012345678901234567890,"neg":-0,"exp":1E-7}`,
		"{\"bad\":\"\xff\xfe\",\"esc\":\"\\ud800\\u00e9\"}",
		`{"x":1} `, `{"x":1}{}`, `[1]`, `{"x":}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var got, want map[string]any
		err := decodeArguments(raw, &got)
		werr := json.Unmarshal(raw, &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: decodeArguments: %v; encoding/json: %v", raw, err, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: decodeArguments = %#v\nencoding/json = %#v", raw, got, want)
		}
	})
}
