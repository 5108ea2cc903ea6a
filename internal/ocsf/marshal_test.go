package ocsf_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/writhq/writ/internal/ocsf"
)

// encodingJSON is the reference Record.Marshal must equal.
func encodingJSON(t testing.TB, r ocsf.Record) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMarshalIsEncodingJSON: the records of every event type encode as
// encoding/json encodes them.
func TestMarshalIsEncodingJSON(t *testing.T) {
	m := ocsf.NewMapper(origin, 0)
	for _, e := range entries(t) {
		r := m.Map(e)
		if got, want := r.Marshal(), encodingJSON(t, r); !bytes.Equal(got, want) {
			t.Errorf("%s: Marshal\n%s\nencoding/json\n%s", e.Event.Type, got, want)
		}
	}
}

// fill sets every field reachable from v to a value that is not empty,
// with s in every string, so that a field Marshal forgot, or encodes
// unlike encoding/json, shows.
func fill(v reflect.Value, s string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64:
		v.SetInt(-42)
	case reflect.Uint64:
		v.SetUint(1 << 63)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), s)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), s)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), s)
		}
	case reflect.Map:
		v.Set(reflect.ValueOf(map[string]any{
			s: s, "b": true, "i": -3, "i64": int64(1 << 40), "u": uint64(1<<64 - 1), "nil": nil,
			"list": []string{s, ""}, "nested": map[string]any{"z": s, "a": 1}, "float": 1.5,
			"other": struct {
				A string `json:"a"`
			}{s},
		}))
	}
}

func TestMarshalEveryField(t *testing.T) {
	for _, s := range []string{"plain", `q"uo\te<>&` + "\n\r\t\b\f\x00\x1f\x7f", "bad \xff utf-8 \xe2\x80", "sep\u2028\u2029é😀", ""} {
		var r ocsf.Record
		fill(reflect.ValueOf(&r).Elem(), s)
		if got, want := r.Marshal(), encodingJSON(t, r); !bytes.Equal(got, want) {
			t.Errorf("%q: Marshal\n%s\nencoding/json\n%s", s, got, want)
		}
	}
	// Empty and nil members are left out, or null, as encoding/json has
	// them.
	var zero ocsf.Record
	if got, want := zero.Marshal(), encodingJSON(t, zero); !bytes.Equal(got, want) {
		t.Errorf("zero record: Marshal\n%s\nencoding/json\n%s", got, want)
	}
	empty := ocsf.Record{Resources: []ocsf.Resource{{}}, Actor: &ocsf.Actor{Authorizations: []ocsf.Authorization{{}}},
		API: &ocsf.API{}, Entity: &ocsf.Entity{}, Unmapped: map[string]any{}, User: map[string]any{}}
	if got, want := empty.Marshal(), encodingJSON(t, empty); !bytes.Equal(got, want) {
		t.Errorf("empty members: Marshal\n%s\nencoding/json\n%s", got, want)
	}
}

func FuzzMarshal(f *testing.F) {
	f.Add("tool.read", "a<b>&c", "\u2028", 7)
	f.Add("\xff", "\"", "\\", -1)
	f.Fuzz(func(t *testing.T, a, b, c string, n int) {
		r := ocsf.Record{
			ActivityID: n, ActivityName: a, Message: b, StatusDetail: c, Time: int64(n) << 20,
			Actor:     &ocsf.Actor{User: map[string]any{"uid": a, b: c}, AppUID: c, Authorizations: []ocsf.Authorization{{Decision: b, Policy: map[string]any{c: a}}}},
			API:       &ocsf.API{Operation: a, Request: map[string]any{"uid": b}},
			Resources: []ocsf.Resource{{UID: c, Labels: []string{a, b}}},
			Metadata:  ocsf.Metadata{Version: ocsf.Version, Product: map[string]any{"name": a}, UID: b, LogName: c},
			Unmapped:  map[string]any{a: n, b: uint64(n), c: []string{a}},
		}
		if got, want := r.Marshal(), encodingJSON(t, r); !bytes.Equal(got, want) {
			t.Fatalf("Marshal\n%s\nencoding/json\n%s", got, want)
		}
	})
}

func BenchmarkMarshal(b *testing.B) {
	m := ocsf.NewMapper(origin, 0)
	var recs []ocsf.Record
	for _, e := range entries(b) {
		recs = append(recs, m.Map(e))
	}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, r := range recs {
				r.Marshal()
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, r := range recs {
				encodingJSON(b, r)
			}
		}
	})
}
