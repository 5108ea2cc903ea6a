package ocsf

import (
	"strconv"

	"github.com/writhq/writ/internal/jsonappend"
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
	w := jsonappend.Object{B: b}
	w.Int("activity_id", r.ActivityID)
	w.Str("activity_name", r.ActivityName)
	w.Int("category_uid", r.CategoryUID)
	w.Str("category_name", r.CategoryName)
	w.Int("class_uid", r.ClassUID)
	w.Str("class_name", r.ClassName)
	w.Int("type_uid", r.TypeUID)
	w.Str("type_name", r.TypeName)
	w.I64("time", r.Time)
	w.Int("severity_id", r.SeverityID)
	w.Str("severity", r.Severity)
	w.Int("status_id", r.StatusID)
	w.Str("status", r.Status)
	w.OptStr("status_detail", r.StatusDetail)
	w.OptStr("message", r.Message)
	if r.Actor != nil {
		w.B = r.Actor.appendJSON(w.Key("actor"))
	}
	if r.API != nil {
		w.B = r.API.appendJSON(w.Key("api"))
	}
	if len(r.Resources) > 0 {
		w.B = jsonappend.Array(w.Key("resources"), len(r.Resources), func(b []byte, i int) []byte {
			return r.Resources[i].appendJSON(b)
		})
	}
	w.OptMap("src_endpoint", r.SrcEndpoint)
	if r.Entity != nil {
		w.B = r.Entity.appendJSON(w.Key("entity"))
	}
	if r.EntityResult != nil {
		w.B = r.EntityResult.appendJSON(w.Key("entity_result"))
	}
	w.OptStr("comment", r.Comment)
	w.OptMap("user", r.User)
	w.OptMap("service", r.Service)
	w.OptMap("session", r.Session)
	if r.AuthProtocolID != 0 {
		w.Int("auth_protocol_id", r.AuthProtocolID)
	}
	w.OptStr("auth_protocol", r.AuthProtocol)
	w.OptMap("app", r.App)
	w.B = r.Metadata.appendJSON(w.Key("metadata"))
	w.B = jsonappend.Map(w.Key("unmapped"), r.Unmapped)
	return w.End()
}

func (a *Actor) appendJSON(b []byte) []byte {
	w := jsonappend.Object{B: b}
	w.OptMap("user", a.User)
	w.OptStr("app_name", a.AppName)
	w.OptStr("app_uid", a.AppUID)
	w.OptMap("session", a.Session)
	if len(a.Authorizations) > 0 {
		w.B = jsonappend.Array(w.Key("authorizations"), len(a.Authorizations), func(b []byte, i int) []byte {
			aw := jsonappend.Object{B: b}
			aw.Str("decision", a.Authorizations[i].Decision)
			aw.OptMap("policy", a.Authorizations[i].Policy)
			return aw.End()
		})
	}
	return w.End()
}

func (a *API) appendJSON(b []byte) []byte {
	w := jsonappend.Object{B: b}
	w.Str("operation", a.Operation)
	w.OptMap("service", a.Service)
	w.OptMap("request", a.Request)
	return w.End()
}

func (r Resource) appendJSON(b []byte) []byte {
	w := jsonappend.Object{B: b}
	w.Str("uid", r.UID)
	w.OptStr("type", r.Type)
	if len(r.Labels) > 0 {
		w.B = jsonappend.Strings(w.Key("labels"), r.Labels)
	}
	return w.End()
}

func (e *Entity) appendJSON(b []byte) []byte {
	w := jsonappend.Object{B: b}
	w.Str("uid", e.UID)
	w.OptStr("name", e.Name)
	w.Str("type", e.Type)
	return w.End()
}

func (m Metadata) appendJSON(b []byte) []byte {
	w := jsonappend.Object{B: b}
	w.Str("version", m.Version)
	w.B = jsonappend.Map(w.Key("product"), m.Product)
	w.Str("uid", m.UID)
	w.OptStr("correlation_uid", m.CorrelationUID)
	w.Str("log_name", m.LogName)
	if m.Sequence != nil {
		w.B = strconv.AppendUint(w.Key("sequence"), *m.Sequence, 10)
	}
	return w.End()
}
