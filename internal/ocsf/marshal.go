package ocsf

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Marshal returns r as JSON, byte for byte what encoding/json writes for
// it (members in field order, omitempty as tagged, map keys sorted,
// strings escaped for HTML), without reflection: a sink encodes a record
// for every event of the log, on the same cores that decide. The test
// holds the two encodings equal for every field.
func (r Record) Marshal() []byte {
	return r.AppendJSON(make([]byte, 0, 1024))
}

// AppendJSON appends Marshal's encoding of r to b.
func (r Record) AppendJSON(b []byte) []byte {
	w := obj{b: b}
	w.int("activity_id", r.ActivityID)
	w.str("activity_name", r.ActivityName)
	w.int("category_uid", r.CategoryUID)
	w.str("category_name", r.CategoryName)
	w.int("class_uid", r.ClassUID)
	w.str("class_name", r.ClassName)
	w.int("type_uid", r.TypeUID)
	w.str("type_name", r.TypeName)
	w.i64("time", r.Time)
	w.int("severity_id", r.SeverityID)
	w.str("severity", r.Severity)
	w.int("status_id", r.StatusID)
	w.str("status", r.Status)
	w.optStr("status_detail", r.StatusDetail)
	w.optStr("message", r.Message)
	if r.Actor != nil {
		w.b = r.Actor.appendJSON(w.key("actor"))
	}
	if r.API != nil {
		w.b = r.API.appendJSON(w.key("api"))
	}
	if len(r.Resources) > 0 {
		b := append(w.key("resources"), '[')
		for i, res := range r.Resources {
			if i > 0 {
				b = append(b, ',')
			}
			b = res.appendJSON(b)
		}
		w.b = append(b, ']')
	}
	w.optMap("src_endpoint", r.SrcEndpoint)
	if r.Entity != nil {
		w.b = r.Entity.appendJSON(w.key("entity"))
	}
	if r.EntityResult != nil {
		w.b = r.EntityResult.appendJSON(w.key("entity_result"))
	}
	w.optStr("comment", r.Comment)
	w.optMap("user", r.User)
	w.optMap("service", r.Service)
	w.optMap("session", r.Session)
	if r.AuthProtocolID != 0 {
		w.int("auth_protocol_id", r.AuthProtocolID)
	}
	w.optStr("auth_protocol", r.AuthProtocol)
	w.optMap("app", r.App)
	w.b = r.Metadata.appendJSON(w.key("metadata"))
	w.b = appendMap(w.key("unmapped"), r.Unmapped)
	return w.end()
}

func (a *Actor) appendJSON(b []byte) []byte {
	w := obj{b: b}
	w.optMap("user", a.User)
	w.optStr("app_name", a.AppName)
	w.optStr("app_uid", a.AppUID)
	w.optMap("session", a.Session)
	if len(a.Authorizations) > 0 {
		b := append(w.key("authorizations"), '[')
		for i, au := range a.Authorizations {
			if i > 0 {
				b = append(b, ',')
			}
			aw := obj{b: b}
			aw.str("decision", au.Decision)
			aw.optMap("policy", au.Policy)
			b = aw.end()
		}
		w.b = append(b, ']')
	}
	return w.end()
}

func (a *API) appendJSON(b []byte) []byte {
	w := obj{b: b}
	w.str("operation", a.Operation)
	w.optMap("service", a.Service)
	w.optMap("request", a.Request)
	return w.end()
}

func (r Resource) appendJSON(b []byte) []byte {
	w := obj{b: b}
	w.str("uid", r.UID)
	w.optStr("type", r.Type)
	if len(r.Labels) > 0 {
		w.b = appendStrings(w.key("labels"), r.Labels)
	}
	return w.end()
}

func (e *Entity) appendJSON(b []byte) []byte {
	w := obj{b: b}
	w.str("uid", e.UID)
	w.optStr("name", e.Name)
	w.str("type", e.Type)
	return w.end()
}

func (m Metadata) appendJSON(b []byte) []byte {
	w := obj{b: b}
	w.str("version", m.Version)
	w.b = appendMap(w.key("product"), m.Product)
	w.str("uid", m.UID)
	w.optStr("correlation_uid", m.CorrelationUID)
	w.str("log_name", m.LogName)
	if m.Sequence != nil {
		w.b = strconv.AppendUint(w.key("sequence"), *m.Sequence, 10)
	}
	return w.end()
}

// obj writes the members of one JSON object.
type obj struct {
	b    []byte
	open bool
}

// key writes the separator and "k": and returns the buffer to append the
// value to; k needs no escaping.
func (w *obj) key(k string) []byte {
	if w.open {
		w.b = append(w.b, ',')
	} else {
		w.b = append(w.b, '{')
		w.open = true
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	return append(w.b, '"', ':')
}

func (w *obj) end() []byte {
	if !w.open {
		return append(w.b, '{', '}')
	}
	return append(w.b, '}')
}

func (w *obj) str(k, v string)     { w.b = appendString(w.key(k), v) }
func (w *obj) int(k string, v int) { w.b = strconv.AppendInt(w.key(k), int64(v), 10) }
func (w *obj) i64(k string, v int64) {
	w.b = strconv.AppendInt(w.key(k), v, 10)
}

func (w *obj) optStr(k, v string) {
	if v != "" {
		w.str(k, v)
	}
}

func (w *obj) optMap(k string, m map[string]any) {
	if len(m) > 0 {
		w.b = appendMap(w.key(k), m)
	}
}

// appendMap writes m as encoding/json does: keys sorted, null when nil.
func appendMap(b []byte, m map[string]any) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	var arr [16]string
	keys := arr[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendValue(b, m[k])
	}
	return append(b, '}')
}

func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendValue writes the values the mapping puts in maps directly, and
// leaves any other to encoding/json.
func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendString(b, v)
	case bool:
		return strconv.AppendBool(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case uint64:
		return strconv.AppendUint(b, v, 10)
	case []string:
		return appendStrings(b, v)
	case map[string]any:
		return appendMap(b, v)
	}
	j, err := json.Marshal(v)
	if err != nil {
		// As encoding/json would fail the whole record; a record is
		// never left unterminated.
		return append(b, "null"...)
	}
	return append(b, j...)
}

const hex = "0123456789abcdef"

// appendString writes s quoted as encoding/json does by default: <, > and
// & escaped for HTML, U+2028 and U+2029 escaped, invalid UTF-8 replaced
// with U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
