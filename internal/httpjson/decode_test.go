package httpjson_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/httpjson"
)

func TestUnmarshal(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		field      string // the member named, "" for the whole body
		detail     string // part of the error text; "" means accepted
	}{
		{"exact", `{"tool":"t","arguments":{"a":{"b":[1,{"c":2}]}}}`, "", ""},
		{"whitespace around", " \n{\"tool\":\"t\"}\n ", "", ""},
		{"unknown field", `{"tool":"t","args":{"a":1}}`, "args", `unknown field "args"`},
		{"case variant", `{"TOOL":"t"}`, "TOOL", `unknown field "TOOL" (names are case-sensitive: did you mean "tool"?)`},
		{"case variant after the field", `{"tool":"t","Tool":"u"}`, "Tool", `did you mean "tool"?`},
		{"duplicate field", `{"tool":"a","tool":"b"}`, "tool", `duplicate key "tool"`},
		{"duplicate in arguments", `{"tool":"t","arguments":{"x":1,"x":2}}`, "arguments.x", `duplicate key "arguments.x"`},
		{"duplicate deep in arguments", `{"arguments":{"l":[0,{"k":{"x":1,"x":1}}]}}`, "arguments.l.1.k.x", `duplicate key "arguments.l.1.k.x"`},
		{"duplicate by escape", `{"arguments":{"x":1,"\u0078":2}}`, "arguments.x", `duplicate key`},
		{"invalid UTF-8", "{\"tool\":\"a\xff\"}", "tool", "invalid UTF-8"},
		{"unpaired surrogate", `{"tool":"a\ud800"}`, "tool", "surrogate"},
		{"trailing data", `{"tool":"t"} {}`, "", "data after the JSON object"},
		{"cut short", `{"tool":"t"`, "", "ends before"},
		{"wrong type", `{"tool":5}`, "tool", `field "tool": want a string, got a number`},
		{"null body", `null`, "", "must be a JSON object"},
		{"array body", `[{"tool":"t"}]`, "", "must be a JSON object"},
		{"empty body", ``, "", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v api.Authorize
			err := httpjson.Unmarshal([]byte(tc.body), &v)
			if tc.detail == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			be, ok := err.(*httpjson.BodyError)
			if !ok {
				t.Fatalf("error %v (%T), want a *BodyError", err, err)
			}
			if be.Field != tc.field || !strings.Contains(be.Detail, tc.detail) {
				t.Errorf("got field %q, %q; want field %q, %q", be.Field, be.Detail, tc.field, tc.detail)
			}
		})
	}
}

// TestUnmarshalNested: the rules hold inside nested structs and lists.
func TestUnmarshalNested(t *testing.T) {
	var o api.OpenTask
	err := httpjson.Unmarshal([]byte(`{"agent":"a","scope":{"tools":["x"],"Resources":["r"]}}`), &o)
	if err == nil || !strings.Contains(err.Error(), `unknown field "scope.Resources" (names are case-sensitive: did you mean "resources"?)`) {
		t.Errorf("case variant in scope: %v", err)
	}
	err = httpjson.Unmarshal([]byte(`{"agent":"a","scope":{"limits":{"Calls":3}}}`), &o)
	if be, ok := err.(*httpjson.BodyError); !ok || be.Field != "scope.limits.Calls" {
		t.Errorf("case variant in scope.limits: %v", err)
	}
	// What is accepted decodes as encoding/json decodes it, arguments byte
	// for byte.
	body := `{"tool":"t","operation":"read","arguments": {"b": [1, 2.5, "x\u00e9"], "a": null} ,"data_class":"internal"}`
	var strict, lax api.Authorize
	if err := httpjson.Unmarshal([]byte(body), &strict); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(body), &lax); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(lax, strict); d != "" {
		t.Errorf("strict and encoding/json differ (-json +strict):\n%s", d)
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		ct, body string
		status   int
		code     string
	}{
		{"application/json", `{"tool":"t"}`, 0, ""},
		{"application/json; charset=utf-8", `{"tool":"t"}`, 0, ""},
		{"Application/JSON; Charset=UTF-8", `{"tool":"t"}`, 0, ""},
		{"", `{"tool":"t"}`, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"text/plain", `{"tool":"t"}`, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"application/json; charset=latin1", `{"tool":"t"}`, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"application/json; boundary=x", `{"tool":"t"}`, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"application/jsonx", `{"tool":"t"}`, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"application/x-www-form-urlencoded", `tool=t`, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"application/json", `{"tool":"t","args":{}}`, http.StatusBadRequest, "invalid_request"},
		{"application/json", `{"tool":"` + strings.Repeat("x", 100) + `"}`, http.StatusRequestEntityTooLarge, "too_large"},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
		if tc.ct != "" {
			r.Header.Set("Content-Type", tc.ct)
		}
		var v api.Authorize
		ok := httpjson.Decode(w, r, 64, &v)
		if ok != (tc.status == 0) {
			t.Fatalf("%q %q: ok = %v (%d %s)", tc.ct, tc.body, ok, w.Code, w.Body)
		}
		if ok {
			if v.Tool != "t" {
				t.Errorf("%q: decoded %+v", tc.ct, v)
			}
			continue
		}
		var e api.Error
		if w.Code != tc.status || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error != tc.code || e.Detail == "" {
			t.Errorf("%q %q: answer %d %s, want %d %s", tc.ct, tc.body, w.Code, w.Body, tc.status, tc.code)
		}
	}
}
