package sink

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/ocsf"
)

// Message is one ledger event as a sink sends it: the record in the
// sink's format, and what identifies the event in the log.
type Message struct {
	// Index is the event's ledger index; ID is "<origin>/<index>".
	Index uint64
	ID    string
	// Type is the event type; Time its time.
	Type string
	Time time.Time
	// LeafHash is the hex RFC 6962 hash of the event's leaf,
	// SHA-256(0x00 || leaf): what an inclusion proof proves.
	LeafHash string
	// Body is the record: an OCSF event, a CloudEvent or writ's envelope.
	Body []byte
}

// maxCalls is how many authorized calls an OCSF sink remembers, so that
// a result's record names its call (about a minute of calls at the
// decision API's peak; ocsf.Mapper says what a forgotten one loses).
const maxCalls = 1 << 16

// encoder turns entries into messages of one format.
type encoder struct {
	format string
	origin string
	// source is the CloudEvents source: the origin as a URI reference.
	source string
	mapper *ocsf.Mapper
	// size is what the next OCSF record's buffer is made to hold: a
	// little more than the last record, so that one allocation of about
	// the right size holds the record (records of one log are alike).
	size int
}

func newEncoder(format, origin string) *encoder {
	e := &encoder{format: format, origin: origin, source: (&url.URL{Path: origin}).String()}
	if format == config.FormatOCSF {
		e.mapper = ocsf.NewMapper(origin, maxCalls)
	}
	return e
}

// encode returns the message of ent, which must carry its leaf.
func (e *encoder) encode(ent ledger.Entry) (Message, error) {
	if len(ent.Leaf) == 0 {
		return Message{}, errors.New("an entry without its leaf: sinks read the log from the store")
	}
	// The ledger's tree hashed the leaf of an entry it handed over; one
	// read from the store is hashed here.
	hash := ent.Hash
	if len(hash) != ledger.HashSize {
		hash = ledger.LeafHash(ent.Leaf)
	}
	m := Message{Index: ent.Index, ID: ocsf.UID(e.origin, ent.Index), Type: ent.Event.Type, Time: ent.Event.Time,
		LeafHash: hex.EncodeToString(hash)}
	var err error
	switch e.format {
	case config.FormatWrit:
		m.Body, err = e.envelope(m, ent.Leaf)
	case config.FormatCloudEvents:
		m.Body, err = e.cloudEvent(m, ent)
	case config.FormatOCSF:
		r := e.mapper.Map(ent)
		seq := ent.Index
		r.Metadata.Sequence = &seq
		r.Unmapped["writ_leaf_hash"] = m.LeafHash
		m.Body = r.AppendJSON(make([]byte, 0, max(e.size, 1024)))
		e.size = len(m.Body) + 256
	default:
		err = fmt.Errorf("format %q", e.format)
	}
	return m, err
}

// envelope is writ's own format: {"index", "origin", "leaf_hash", "event"}
// with the leaf, byte for byte, as "event" (as in a bundle's
// events.jsonl).
func (e *encoder) envelope(m Message, leaf []byte) ([]byte, error) {
	origin, err := json.Marshal(e.origin)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(leaf)+len(origin)+128)
	b = append(b, `{"index":`...)
	b = strconv.AppendUint(b, m.Index, 10)
	b = append(b, `,"origin":`...)
	b = append(b, origin...)
	b = append(b, `,"leaf_hash":"`...)
	b = append(b, m.LeafHash...)
	b = append(b, `","event":`...)
	b = append(b, leaf...)
	return append(b, '}'), nil
}

// cloudEvent is a CloudEvents 1.0 event in structured JSON mode. Its data
// is the leaf, byte for byte; the extensions writindex and writleafhash
// carry the index and the leaf hash.
type cloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            string          `json:"time"`
	Subject         string          `json:"subject,omitempty"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
	WritIndex       uint64          `json:"writindex"`
	WritLeafHash    string          `json:"writleafhash"`
}

// CloudEventsTypePrefix prefixes the event type in a CloudEvent's type.
const CloudEventsTypePrefix = "writ."

func (e *encoder) cloudEvent(m Message, ent ledger.Entry) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// Without HTML escaping, data stays the leaf byte for byte.
	enc.SetEscapeHTML(false)
	err := enc.Encode(cloudEvent{
		SpecVersion: "1.0", ID: m.ID, Source: e.source, Type: CloudEventsTypePrefix + m.Type,
		Time: ent.Event.Time.UTC().Format(time.RFC3339Nano), Subject: ent.Event.TaskID,
		DataContentType: "application/json", Data: ent.Leaf, WritIndex: m.Index, WritLeafHash: m.LeafHash,
	})
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), err
}
