package query

import (
	"reflect"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/event"
)

// TestEventDataMembers checks that every member the index reads is a
// member of some event type's data in internal/event, with the same JSON
// name and a Go type of the same kind: the index's union cannot drift from
// the exported types.
func TestEventDataMembers(t *testing.T) {
	type member struct {
		name string
		kind reflect.Kind
	}
	have := map[member][]string{}
	var walk func(typ string, rt reflect.Type)
	walk = func(typ string, rt reflect.Type) {
		for i := range rt.NumField() {
			f := rt.Field(i)
			if f.Anonymous {
				walk(typ, f.Type)
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			m := member{name, f.Type.Kind()}
			have[m] = append(have[m], typ)
		}
	}
	for _, typ := range event.Types() {
		for _, rt := range event.Shapes(typ) {
			if rt.Kind() == reflect.Struct {
				walk(typ, rt)
			}
		}
	}
	rt := reflect.TypeFor[eventData]()
	for i := range rt.NumField() {
		f := rt.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		kind := f.Type.Kind()
		if name == "scope" {
			kind = reflect.Struct // kept as raw JSON here; an object in task.requested
		}
		if len(have[member{name, kind}]) == 0 {
			t.Errorf("the index reads %q (%v), which no event type's data has", name, kind)
		}
	}
}
