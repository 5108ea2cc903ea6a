// Package ocsf maps ledger events to OCSF records (schema Version): the
// ocsf.jsonl of an evidence bundle and the records an event sink sends
// come from the one Mapper, so that the same event reads the same in both.
//
// Every writ event type has a class (docs/sinks.md has the table): the
// decisions and results of tool calls, hidden tools and refused
// credentials are API Activity (the records a bundle carries); a task's,
// an approval's and a stored body's life is Entity Management; a task
// credential issued or revoked is Authentication; a policy bundle loaded
// or rejected is Application Lifecycle; an imported event is a Base Event.
// metadata.uid is "<origin>/<index>" throughout.
package ocsf

import (
	"strconv"

	"github.com/writhq/writ/internal/ledger"
)

// Version is the OCSF schema version of every record.
const Version = "1.5.0"

// Record is the subset of an OCSF event writ fills, for every class it
// maps to; members a class does not have are left out. Records of one
// Mapper share some of their maps (metadata.product, an authorization's
// policy, an API's service): read a record, never modify it, except its
// Unmapped, which is its own.
type Record struct {
	ActivityID   int            `json:"activity_id"`
	ActivityName string         `json:"activity_name"`
	CategoryUID  int            `json:"category_uid"`
	CategoryName string         `json:"category_name"`
	ClassUID     int            `json:"class_uid"`
	ClassName    string         `json:"class_name"`
	TypeUID      int            `json:"type_uid"`
	TypeName     string         `json:"type_name"`
	Time         int64          `json:"time"`
	SeverityID   int            `json:"severity_id"`
	Severity     string         `json:"severity"`
	StatusID     int            `json:"status_id"`
	Status       string         `json:"status"`
	StatusDetail string         `json:"status_detail,omitempty"`
	Message      string         `json:"message,omitempty"`
	Actor        *Actor         `json:"actor,omitempty"`
	API          *API           `json:"api,omitempty"`
	Resources    []Resource     `json:"resources,omitempty"`
	SrcEndpoint  map[string]any `json:"src_endpoint,omitempty"`

	// Entity Management.
	Entity       *Entity `json:"entity,omitempty"`
	EntityResult *Entity `json:"entity_result,omitempty"`
	Comment      string  `json:"comment,omitempty"`
	// Authentication.
	User           map[string]any `json:"user,omitempty"`
	Service        map[string]any `json:"service,omitempty"`
	Session        map[string]any `json:"session,omitempty"`
	AuthProtocolID int            `json:"auth_protocol_id,omitempty"`
	AuthProtocol   string         `json:"auth_protocol,omitempty"`
	// Application Lifecycle.
	App map[string]any `json:"app,omitempty"`

	Metadata Metadata       `json:"metadata"`
	Unmapped map[string]any `json:"unmapped"`
}

// Actor is who acted, and the authorization writ's policy gave.
type Actor struct {
	User           map[string]any  `json:"user,omitempty"`
	AppName        string          `json:"app_name,omitempty"`
	AppUID         string          `json:"app_uid,omitempty"`
	Session        map[string]any  `json:"session,omitempty"`
	Authorizations []Authorization `json:"authorizations,omitempty"`
}

// Authorization is one decision: allow, deny, approve….
type Authorization struct {
	Decision string         `json:"decision"`
	Policy   map[string]any `json:"policy,omitempty"`
}

// API is the call an API Activity record is about.
type API struct {
	Operation string         `json:"operation"`
	Service   map[string]any `json:"service,omitempty"`
	Request   map[string]any `json:"request,omitempty"`
}

// Resource is what a call touched.
type Resource struct {
	UID  string `json:"uid"`
	Type string `json:"type,omitempty"`
	// Labels carry writ's data class ("data_class:confidential").
	Labels []string `json:"labels,omitempty"`
}

// Entity is a managed entity: a task, an approval, a stored body.
type Entity struct {
	UID  string `json:"uid"`
	Name string `json:"name,omitempty"`
	Type string `json:"type"`
}

// Metadata says where the record comes from: the log (LogName, its
// origin) and the event in it (UID "<origin>/<index>"; Sequence, the
// index, which only a sink's records carry).
type Metadata struct {
	Version        string         `json:"version"`
	Product        map[string]any `json:"product"`
	UID            string         `json:"uid"`
	CorrelationUID string         `json:"correlation_uid,omitempty"`
	LogName        string         `json:"log_name"`
	Sequence       *uint64        `json:"sequence,omitempty"`
}

// UID returns the record ID of the event at index in the log origin.
func UID(origin string, index uint64) string {
	return origin + "/" + strconv.FormatUint(index, 10)
}

// InBundle reports whether an evidence bundle's ocsf.jsonl carries the
// records of events of type typ: the decisions on calls, their results,
// hidden tools and refused credentials.
func InBundle(typ string) bool {
	switch typ {
	case ledger.TypeActionAuthorized, ledger.TypeActionDenied, ledger.TypeActionCompleted,
		ledger.TypeToolsHidden, ledger.TypeAuthRejected:
		return true
	}
	return false
}

// Mapper maps the events of one log, in index order. It remembers the
// calls it saw authorized, so that a result's record names its call; a
// Mapper is not safe for concurrent use.
type Mapper struct {
	origin string
	calls  calls
	shared shared
}

// product is every record's metadata.product, shared by all.
var product = map[string]any{"name": "writ", "vendor_name": "writ"}

// shared holds the maps that the records of one Mapper share: one per
// policy version (an authorization's policy) and per tool family (an API
// call's service), where the events of a log repeat a few values. A
// record is read as written, never modified, but for its Unmapped, which
// is its own.
type shared struct {
	policies, services map[string]map[string]any
}

// maxShared bounds each of shared's maps; past it they start over.
const maxShared = 256

// get returns the map kept in *in under key, made by mk the first time.
func (s *shared) get(in *map[string]map[string]any, key string, mk func() map[string]any) map[string]any {
	if v, ok := (*in)[key]; ok {
		return v
	}
	if *in == nil || len(*in) >= maxShared {
		*in = map[string]map[string]any{}
	}
	v := mk()
	(*in)[key] = v
	return v
}

// NewMapper returns a mapper of the log origin that remembers the last
// maxCalls authorized calls (0: all of them).
func NewMapper(origin string, maxCalls int) *Mapper {
	return &Mapper{origin: origin, calls: calls{max: maxCalls, byID: map[string]call{}}}
}

// Map returns the record of e.
func (m *Mapper) Map(e ledger.Entry) Record {
	if r, ok := m.apiActivity(e); ok {
		return r
	}
	return m.other(e)
}

// base fills what every record has: the class, the time, the actor and
// the metadata.
func (m *Mapper) base(r *Record, e ledger.Entry, class classInfo, activity int, activityName string) {
	ev := e.Event
	r.ActivityID, r.ActivityName = activity, activityName
	r.CategoryUID, r.CategoryName = class.category, class.categoryName
	r.ClassUID, r.ClassName = class.uid, class.name
	r.TypeUID, r.TypeName = class.uid*100+activity, class.name+": "+activityName
	r.Time = ev.Time.UnixMilli()
	r.Metadata = Metadata{
		Version: Version, Product: product,
		UID: UID(m.origin, e.Index), CorrelationUID: ev.TaskID, LogName: m.origin,
	}
}

// classInfo names an OCSF class and its category.
type classInfo struct {
	uid          int
	name         string
	category     int
	categoryName string
}

var (
	classAPIActivity  = classInfo{6003, "API Activity", 6, "Application Activity"}
	classAppLifecycle = classInfo{6002, "Application Lifecycle", 6, "Application Activity"}
	classEntityMgmt   = classInfo{3004, "Entity Management", 3, "Identity & Access Management"}
	classAuthn        = classInfo{3002, "Authentication", 3, "Identity & Access Management"}
	classBase         = classInfo{0, "Base Event", 0, "Uncategorized"}
)

// Severities.
const (
	sevInformational = 1
	sevLow           = 2
	sevMedium        = 3
	sevHigh          = 4
)

func severityName(id int) string {
	switch id {
	case sevInformational:
		return "Informational"
	case sevLow:
		return "Low"
	case sevMedium:
		return "Medium"
	case sevHigh:
		return "High"
	}
	return "Unknown"
}

// Statuses.
const (
	statusSuccess = 1
	statusFailure = 2
)

func (r *Record) setStatus(id int) {
	r.StatusID = id
	r.Status = "Success"
	if id == statusFailure {
		r.Status = "Failure"
	}
}

func (r *Record) setSeverity(id int) { r.SeverityID, r.Severity = id, severityName(id) }
