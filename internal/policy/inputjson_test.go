package policy

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// fillInput sets every field reachable from v to a value that is not
// empty, with s in every string and n in every integer, so that a field
// MarshalInput forgot, or encodes unlike encoding/json, shows.
func fillInput(v reflect.Value, s string, n int64) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64:
		v.SetInt(n)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillInput(v.Elem(), s, n)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 12, 4, 19, 0, 0, int(n&0xffff), time.FixedZone("x", 3600))))
			return
		}
		for i := range v.NumField() {
			fillInput(v.Field(i), s, n)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fillInput(v.Index(i), s, n)
		}
	case reflect.Map:
		switch v.Type() {
		case reflect.TypeFor[map[string]int64]():
			v.Set(reflect.ValueOf(map[string]int64{s: n, "a": 1, "z" + s: -n}))
		case reflect.TypeFor[map[string]any]():
			v.Set(reflect.ValueOf(map[string]any{
				s: s, "b": false, "nil": nil, "n": 3.0, "neg": -0.5, "tiny": 1e-7, "huge": 1e21, "big": 123456789012345678.0,
				"list": []any{s, 1.5, nil, true, []any{}, map[string]any{}}, "nested": map[string]any{"z": s, "a": []any{2.0}},
			}))
		default:
			panic("fillInput: no filler for " + v.Type().String())
		}
	default:
		panic("fillInput: no filler for " + v.Type().String())
	}
}

func assertInputJSON(t *testing.T, in *Input) {
	t.Helper()
	want, werr := json.Marshal(in)
	got, err := MarshalInput(in)
	if (err == nil) != (werr == nil) {
		t.Fatalf("MarshalInput: %v; encoding/json: %v", err, werr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("MarshalInput\n%s\nencoding/json\n%s", got, want)
	}
}

// TestMarshalInputIsEncodingJSON: every field of the input document, and
// the documents the points give, encode as encoding/json encodes them.
func TestMarshalInputIsEncodingJSON(t *testing.T) {
	for _, s := range []string{"plain", `q"uo\te<>&` + "\n\r\t\b\f\x00\x1f\x7f", "bad \xff utf-8 \xe2\x80", "sep\u2028\u2029é😀", ""} {
		for _, n := range []int64{-42, 0, 1 << 62} {
			var in Input
			fillInput(reflect.ValueOf(&in).Elem(), s, n)
			assertInputJSON(t, &in)
		}
	}
	// Empty and nil members are left out, or null, as encoding/json has
	// them.
	assertInputJSON(t, &Input{})
	assertInputJSON(t, &Input{Action: &Action{Arguments: map[string]any{}}, Credential: &Credential{}, History: &History{},
		Task: Task{Scope: Scope{Tools: []string{}, Limits: &Limits{PerTool: map[string]int64{}}}, ParentChain: []ParentTask{}}})
	for _, point := range []Point{PointAction, PointTask} {
		doc, err := Document(point, inScopeAction())
		if err != nil {
			t.Fatal(err)
		}
		doc.History = benchHistory()
		assertInputJSON(t, doc)
	}
	// A time encoding/json refuses is refused.
	in := inScopeAction()
	in.Request.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := MarshalInput(in); err == nil {
		t.Fatal("MarshalInput took the year 10000")
	}
}

// FuzzMarshalInput: an input with any strings, and arguments decoded from
// any JSON object, encodes as encoding/json encodes it.
func FuzzMarshalInput(f *testing.F) {
	f.Add("fs.read", "file:///data/<a>&b", `{"path":"/data/x","n":3,"f":1e-7,"g":1e21,"opts":{"a":true,"b":["x",null,-0.0]}}`)
	f.Add("\xff\u2028", "", `{"a":1,"a":2,"é":"\ud800"}`)
	f.Fuzz(func(t *testing.T, tool, res, args string) {
		in := inScopeAction()
		in.Action.Tool, in.Action.Resource, in.Principal.Roles = tool, res, []string{res, tool}
		var m map[string]any
		if json.Unmarshal([]byte(args), &m) == nil {
			in.Action.Arguments = m
		}
		doc, err := Document(PointAction, in)
		if err != nil {
			t.Fatal(err)
		}
		assertInputJSON(t, doc)
	})
}
