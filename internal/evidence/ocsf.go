package evidence

import (
	"bytes"

	"github.com/writhq/writ/internal/ocsf"
)

// ocsfJSONL is the bundle's ocsf.jsonl: one API Activity record per
// decision on a call (authorized or denied), per recorded result, per
// listing that hid tools, and per refused token, mapped as an event sink
// maps them (internal/ocsf), so that a bundle's record and a SIEM's of the
// same event agree.
func ocsfJSONL(v *view) []byte {
	m := ocsf.NewMapper(v.m.Origin, 0)
	var b bytes.Buffer
	for _, e := range v.events {
		if !ocsf.InBundle(e.Event.Type) {
			continue
		}
		b.Write(m.Map(e.Entry).Marshal())
		b.WriteByte('\n')
	}
	return b.Bytes()
}
