package ledger

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/writhq/writ/internal/jcs"
)

// MaxLeafBytes is the largest canonical event a leaf can hold: entry bundles
// prefix each leaf with a 16-bit length.
const MaxLeafBytes = 65535

// SaltSize is the size of the random salt of a payload commitment.
const SaltSize = 32

// TimeFormat is how event times are written into leaves: RFC 3339, UTC,
// nanoseconds, fixed width so that they sort as text.
const TimeFormat = "2006-01-02T15:04:05.000000000Z"

// leafDoc is the envelope as it is canonicalized into a leaf.
type leafDoc struct {
	V             int               `json:"v"`
	Type          string            `json:"type"`
	Time          string            `json:"time"`
	TaskID        string            `json:"task_id,omitempty"`
	Principal     string            `json:"principal,omitempty"`
	Agent         string            `json:"agent,omitempty"`
	DecisionID    string            `json:"decision_id,omitempty"`
	Delegation    *uint64           `json:"delegation,omitempty"`
	PolicyVersion string            `json:"policy_version,omitempty"`
	Prev          *uint64           `json:"prev,omitempty"`
	JTI           string            `json:"jti,omitempty"`
	TraceID       string            `json:"trace_id,omitempty"`
	Data          json.RawMessage   `json:"data,omitempty"`
	Commitments   map[string]string `json:"commitments,omitempty"`
}

// Entry is a leaf read back from the ledger.
type Entry struct {
	Index uint64
	// Version is the leaf's envelope version: EnvelopeVersion, or 1 for a
	// leaf written before task chains.
	Version int
	Event   Event
	// Commitments maps each body name to "sha256:<hex>" of salt || body.
	Commitments map[string]string
	// Leaf is the canonical bytes the tree commits to.
	Leaf []byte
	// Hash is Leaf's RFC 6962 hash, LeafHash(Leaf), on an entry handed
	// over with it (Follower.Committed); nil on any other, whose
	// reader computes it.
	Hash []byte
}

// Commit returns the commitment to a body: "sha256:" + hex(sha256(salt || data)).
func Commit(salt, data []byte) string {
	h := sha256.New()
	h.Write(salt)
	h.Write(data)
	var sum [sha256.Size]byte
	var out [len("sha256:") + 2*sha256.Size]byte
	return string(hex.AppendEncode(append(out[:0], "sha256:"...), h.Sum(sum[:0])))
}

// maxBodies is the most bodies one event may commit to.
const maxBodies = 16

// limits bounds what one event may carry.
type limits struct {
	maxBody int64
}

// encode validates e and returns its canonical leaf and the bodies (with fresh
// salts) to store beside it. Nothing is written. The leaf has no task
// links yet: the sequencer adds them where slots says (withLinks).
func encode(e *Event, lim limits) ([]byte, []Body, linkSlots, error) {
	leaf, bodies, slots, err := encodeUnlinked(e, lim)
	if err == nil && (e.Prev != nil || e.Delegation != nil) {
		err = &ValidationError{Field: "prev", Reason: "the ledger sets an event's task links as it sequences it"}
	}
	return leaf, bodies, slots, err
}

func encodeUnlinked(e *Event, lim limits) ([]byte, []Body, linkSlots, error) {
	var slots linkSlots
	if err := validate(e, lim); err != nil {
		return nil, nil, slots, err
	}
	doc := leafDoc{
		V: EnvelopeVersion, Type: e.Type, Time: e.Time.UTC().Format(TimeFormat),
		TaskID: e.TaskID, Principal: e.Principal, Agent: e.Agent, DecisionID: e.DecisionID,
		PolicyVersion: e.PolicyVersion, JTI: e.JTI, TraceID: e.TraceID, Data: e.Data,
	}
	var bodies []Body
	if len(e.Bodies) > 0 {
		doc.Commitments = make(map[string]string, len(e.Bodies))
		for name, data := range e.Bodies {
			salt := make([]byte, SaltSize)
			if _, err := rand.Read(salt); err != nil {
				return nil, nil, slots, err
			}
			doc.Commitments[name] = Commit(salt, data)
			bodies = append(bodies, Body{Name: name, Salt: salt, Data: data})
		}
	}
	leaf, err := appendLeafSlots(make([]byte, 0, 256+len(e.Data)+100*len(e.Bodies)), &doc, &slots)
	if err != nil {
		return nil, nil, slots, &ValidationError{Field: "data", Reason: err.Error()}
	}
	// A task's event leaves room for the links the sequencer adds.
	if n := len(leaf) + linkRoom(e.TaskID); n > MaxLeafBytes {
		return nil, nil, slots, &ValidationError{Reason: fmt.Sprintf("event is %d bytes once canonical (with its task links); the limit is %d (move large fields into bodies)", n, MaxLeafBytes)}
	}
	return leaf, bodies, slots, nil
}

func validate(e *Event, lim limits) error {
	if e.Type == "" {
		return &ValidationError{Field: "type", Reason: "missing"}
	}
	if !KnownType(e.Type) {
		return &ValidationError{Field: "type", Reason: fmt.Sprintf("unknown event type %q (events from other systems use the %q prefix)", e.Type, ImportPrefix)}
	}
	if e.Time.IsZero() {
		return &ValidationError{Field: "time", Reason: "missing"}
	}
	if y := e.Time.UTC().Year(); y < 1970 || y > 9999 {
		return &ValidationError{Field: "time", Reason: "out of range"}
	}
	for _, f := range [...]struct{ name, v string }{
		{"task_id", e.TaskID}, {"principal", e.Principal}, {"agent", e.Agent}, {"decision_id", e.DecisionID},
		{"policy_version", e.PolicyVersion}, {"jti", e.JTI}, {"trace_id", e.TraceID},
	} {
		if len(f.v) > 1024 {
			return &ValidationError{Field: f.name, Reason: "longer than 1024 bytes"}
		}
		if !utf8.ValidString(f.v) {
			return &ValidationError{Field: f.name, Reason: "not valid UTF-8"}
		}
	}
	if len(e.Data) > 0 {
		// Canonicalizing the leaf checks the JSON itself.
		if d := bytes.TrimSpace(e.Data); len(d) == 0 || d[0] != '{' {
			return &ValidationError{Field: "data", Reason: "must be a JSON object"}
		}
	}
	if len(e.Bodies) > maxBodies {
		return &ValidationError{Field: "bodies", Reason: fmt.Sprintf("more than %d bodies", maxBodies)}
	}
	for name, data := range e.Bodies {
		if !validBodyName(name) {
			return &ValidationError{Field: "bodies", Reason: fmt.Sprintf("body name %q: want 1-64 of a-z, 0-9, _ starting with a letter", name)}
		}
		if int64(len(data)) > lim.maxBody {
			return &ValidationError{Field: "bodies." + name, Reason: fmt.Sprintf("body is %d bytes; the limit is %d", len(data), lim.maxBody)}
		}
	}
	return nil
}

func validBodyName(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ParseLeaf decodes and checks a leaf: it must be the canonical form of a
// valid envelope of a known version and type.
func ParseLeaf(index uint64, leaf []byte) (Entry, error) {
	doc, err := decodeLeaf(leaf)
	if err != nil {
		return Entry{}, fmt.Errorf("leaf %d: %v", index, err)
	}
	if doc.V != EnvelopeVersion && doc.V != 1 {
		return Entry{}, fmt.Errorf("leaf %d: envelope version %d, want %d (or 1, before task chains)", index, doc.V, EnvelopeVersion)
	}
	if err := checkLinks(index, &doc); err != nil {
		return Entry{}, fmt.Errorf("leaf %d: %v", index, err)
	}
	if !KnownType(doc.Type) {
		return Entry{}, fmt.Errorf("leaf %d: unknown event type %q", index, doc.Type)
	}
	t, err := time.Parse(TimeFormat, doc.Time)
	if err != nil || t.UTC().Format(TimeFormat) != doc.Time {
		return Entry{}, fmt.Errorf("leaf %d: bad time %q", index, doc.Time)
	}
	if doc.Data != nil && (len(doc.Data) == 0 || doc.Data[0] != '{') {
		return Entry{}, fmt.Errorf("leaf %d: data is not a JSON object", index)
	}
	for name, c := range doc.Commitments {
		if !validBodyName(name) || !validCommitment(c) {
			return Entry{}, fmt.Errorf("leaf %d: malformed commitment %q", index, name)
		}
	}
	// The leaf must be exactly what the ledger writes for the envelope it
	// decodes to: canonical, with the field names' exact spelling, and no
	// explicitly empty fields.
	again, err := appendLeaf(make([]byte, 0, len(leaf)), &doc)
	if err != nil || !bytes.Equal(again, leaf) {
		return Entry{}, fmt.Errorf("leaf %d: not the canonical (RFC 8785) encoding of a writ event", index)
	}
	ent := Entry{
		Index:   index,
		Version: doc.V,
		Event: Event{
			Type: doc.Type, Time: t, TaskID: doc.TaskID, Principal: doc.Principal, Agent: doc.Agent,
			DecisionID: doc.DecisionID, PolicyVersion: doc.PolicyVersion, JTI: doc.JTI, TraceID: doc.TraceID,
			Data: doc.Data, Prev: doc.Prev, Delegation: doc.Delegation,
		},
		Commitments: doc.Commitments,
		Leaf:        leaf,
	}
	// Whatever Append would refuse is not a leaf the ledger wrote.
	if err := validate(&ent.Event, limits{}); err != nil {
		return Entry{}, fmt.Errorf("leaf %d: %v", index, err)
	}
	if len(doc.Commitments) > maxBodies {
		return Entry{}, fmt.Errorf("leaf %d: more than %d commitments", index, maxBodies)
	}
	return ent, nil
}

func validCommitment(c string) bool {
	h, ok := strings.CutPrefix(c, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if !(h[i] >= '0' && h[i] <= '9' || h[i] >= 'a' && h[i] <= 'f') {
			return false
		}
	}
	return true
}

// appendLeaf writes doc's canonical (RFC 8785) form: members in sorted
// order, empty ones left out, data canonicalized. Writing it directly, rather
// than through encoding/json and a canonicalizer, keeps reflection off the
// append path; ParseLeaf checks leaves against this same function.
func appendLeaf(dst []byte, doc *leafDoc) ([]byte, error) {
	return appendLeafSlots(dst, doc, nil)
}

// appendLeafSlots is appendLeaf that also records, in slots when not nil,
// where the task links go.
func appendLeafSlots(dst []byte, doc *leafDoc, slots *linkSlots) ([]byte, error) {
	var scratch linkSlots
	if slots == nil {
		slots = &scratch
	}
	dst = append(dst, '{')
	first := true
	// key writes a member's name, after a comma unless it is the first.
	key := func(name string) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, name...)
		dst = append(dst, '"', ':')
	}
	num := func(name string, v *uint64, at *int, after *bool) {
		*at, *after = len(dst), !first
		if v == nil {
			return
		}
		key(name)
		dst = strconv.AppendUint(dst, *v, 10)
	}

	str := func(name, v string) bool {
		if v == "" {
			return true
		}
		key(name)
		var ok bool
		dst, ok = jcs.AppendString(dst, v)
		return ok
	}
	// Member names in UTF-16 (here: ASCII) order.
	ok := str("agent", doc.Agent)
	if len(doc.Commitments) > 0 {
		dst = append(dst, `,"commitments":{`[boolIndex(first):]...)
		first = false
		names := make([]string, 0, len(doc.Commitments))
		for n := range doc.Commitments {
			names = append(names, n)
		}
		sort.Strings(names)
		for i, n := range names {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok1, ok2 bool
			dst, ok1 = jcs.AppendString(dst, n)
			dst = append(dst, ':')
			dst, ok2 = jcs.AppendString(dst, doc.Commitments[n])
			ok = ok && ok1 && ok2
		}
		dst = append(dst, '}')
	}
	if doc.Data != nil {
		dst = append(dst, `,"data":`[boolIndex(first):]...)
		first = false
		var err error
		slots.data = len(dst)
		if dst, err = jcs.Append(dst, doc.Data); err != nil {
			return nil, err
		}
		slots.dataEnd = len(dst)
	}
	ok = str("decision_id", doc.DecisionID) && ok
	num("delegation", doc.Delegation, &slots.delegation, &slots.delegationAfter)
	ok = str("jti", doc.JTI) && ok
	ok = str("policy_version", doc.PolicyVersion) && ok
	num("prev", doc.Prev, &slots.prev, &slots.prevAfter)
	ok = str("principal", doc.Principal) && ok
	ok = str("task_id", doc.TaskID) && ok
	ok = str("time", doc.Time) && ok
	ok = str("trace_id", doc.TraceID) && ok
	ok = str("type", doc.Type) && ok
	if !first {
		dst = append(dst, ',')
	}
	dst = append(dst, `"v":`...)
	dst = strconv.AppendInt(dst, int64(doc.V), 10)
	dst = append(dst, '}')
	if !ok {
		return nil, errors.New("a string is not valid UTF-8")
	}
	return dst, nil
}

// boolIndex is 1 when b is true: it skips a leading comma before the first member.
func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}
