package evidence

import (
	"encoding/json"
	"fmt"
	"strings"
)

// data is an event's data member, decoded loosely for reading.
type data map[string]any

func fields(raw json.RawMessage) data {
	var d data
	if len(raw) > 0 {
		json.Unmarshal(raw, &d)
	}
	return d
}

func (d data) str(k string) string {
	s, _ := d[k].(string)
	return s
}

// strs returns a string list member.
func (d data) strs(k string) []string {
	l, _ := d[k].([]any)
	out := make([]string, 0, len(l))
	for _, v := range l {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

// first returns the first non-empty of the members named.
func (d data) first(ks ...string) string {
	for _, k := range ks {
		if s := d.str(k); s != "" {
			return s
		}
	}
	return ""
}

// joined returns a list member as "a; b".
func (d data) joined(k string) string { return strings.Join(d.strs(k), "; ") }
