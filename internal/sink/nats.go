package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/writhq/writ/internal/config"
)

// Headers of a NATS sink's messages, besides JetStream's Nats-Msg-Id
// ("<origin>/<index>"), which lets the stream's duplicate window drop a
// message delivered again.
const (
	IndexHeader    = "Writ-Index"
	OriginHeader   = "Writ-Origin"
	LeafHashHeader = "Writ-Leaf-Hash"
)

// natsSink publishes each event to JetStream, on <subject>.<event type>,
// and returns once the stream has acknowledged every message of the
// batch. Publishes are pipelined; none is retried (a retry could overtake
// the messages after it): a batch that fails is sent again whole, from
// the sink's cursor.
//
// It speaks JetStream's publish protocol on the core connection rather
// than through the jetstream package's asynchronous publisher, which
// makes a future, two channels, a timer and a header map for every
// message and decodes every acknowledgement with encoding/json: each
// message is published with a reply subject of the sink's own
// ("<inbox>.<n>", n counting the messages sent), and one subscription
// takes the acknowledgements. Those of an earlier batch, arriving late,
// are ignored.
type natsSink struct {
	name    string
	url     string
	subject string
	creds   string
	origin  string
	timeout time.Duration
	nc      *nats.Conn
	sub     *nats.Subscription
	// inbox prefixes the reply subjects; subjects holds <subject>.<type>
	// by event type.
	inbox    string
	subjects map[string]string
	// msg is the message being published, with its header values, made
	// once: the connection copies what it sends before PublishMsg returns.
	msg                    nats.Msg
	msgID, index, leafHash []string
	reply                  []byte
	// mu guards b and next, which the acknowledgements' handler reads.
	mu   sync.Mutex
	b    batch
	next uint64 // the number of the next message sent
}

// batch is the delivery waiting for its acknowledgements: messages
// numbered first to first+len(msgs)-1.
type batch struct {
	msgs    []Message
	first   uint64
	acked   []bool
	pending int
	err     error
	done    chan struct{}
}

func newNATSSink(c config.SinkConfig, origin string) *natsSink {
	s := &natsSink{name: c.Name, url: c.URL, subject: c.Subject, creds: c.CredsFile, origin: origin,
		timeout: c.Timeout, subjects: map[string]string{}, msgID: []string{""}, index: []string{""}, leafHash: []string{""}}
	s.msg.Header = nats.Header{jetstream.MsgIDHeader: s.msgID, IndexHeader: s.index, OriginHeader: {origin}, LeafHashHeader: s.leafHash}
	return s
}

// connect connects once; the connection then reconnects by itself, and
// renews the subscription to the acknowledgements.
func (s *natsSink) connect() error {
	if s.nc != nil {
		return nil
	}
	opts := []nats.Option{nats.Name("writ sink " + s.name), nats.Timeout(s.timeout),
		nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}
	if s.creds != "" {
		opts = append(opts, nats.UserCredentials(s.creds))
	}
	nc, err := nats.Connect(s.url, opts...)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", s.url, err)
	}
	inbox := nc.NewRespInbox()
	sub, err := nc.Subscribe(inbox+".*", s.acknowledged)
	if err != nil {
		nc.Close()
		return fmt.Errorf("subscribing to the acknowledgements: %w", err)
	}
	s.nc, s.sub, s.inbox = nc, sub, inbox
	return nil
}

func (s *natsSink) deliver(ctx context.Context, msgs []Message) error {
	if err := s.connect(); err != nil {
		return err
	}
	first, done := s.begin(msgs)
	defer s.end()
	for i, m := range msgs {
		s.msg.Subject = s.subjectOf(m.Type)
		s.reply = strconv.AppendUint(append(append(s.reply[:0], s.inbox...), '.'), first+uint64(i), 10)
		s.msg.Reply = string(s.reply)
		s.msg.Data = m.Body
		s.msgID[0], s.index[0], s.leafHash[0] = m.ID, strconv.FormatUint(m.Index, 10), m.LeafHash
		if err := s.nc.PublishMsg(&s.msg); err != nil {
			return s.failed(m, err)
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.err
}

// begin numbers msgs for their acknowledgements and returns the number of
// the first and the channel closed once all have come, or one has failed.
func (s *natsSink) begin(msgs []Message) (uint64, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acked := s.b.acked[:0]
	for range msgs {
		acked = append(acked, false)
	}
	s.b = batch{msgs: msgs, first: s.next, acked: acked, pending: len(msgs), done: make(chan struct{})}
	s.next += uint64(len(msgs))
	return s.b.first, s.b.done
}

// end stops taking acknowledgements for the batch.
func (s *natsSink) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.msgs, s.b.pending = nil, 0
}

// acknowledged takes JetStream's answer to one message.
func (s *natsSink) acknowledged(reply *nats.Msg) {
	n, err := strconv.ParseUint(reply.Subject[min(len(s.inbox)+1, len(reply.Subject)):], 10, 64)
	if err != nil {
		return
	}
	failure := pubAckError(reply)
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &s.b
	if b.pending == 0 || n < b.first || n-b.first >= uint64(len(b.msgs)) || b.acked[n-b.first] {
		return // an earlier batch's, or an answer given twice
	}
	b.acked[n-b.first] = true
	if failure != nil {
		b.err = s.failed(b.msgs[n-b.first], failure)
		b.pending = 0
		close(b.done)
		return
	}
	if b.pending--; b.pending == 0 {
		close(b.done)
	}
}

// pubAckError returns why JetStream did not store a message, from its
// answer, or nil when it did (a duplicate included: the stream holds it).
func pubAckError(reply *nats.Msg) error {
	if len(reply.Data) == 0 {
		if reply.Header.Get("Status") == "503" {
			return nats.ErrNoResponders
		}
		return fmt.Errorf("an empty answer (status %q)", reply.Header.Get("Status"))
	}
	// A stored message's answer is {"stream":…,"seq":…}; only one that
	// mentions an error, or lacks either, is decoded. An answer that is
	// not JetStream's (a core subscriber replying on the subject) stores
	// nothing, and is a failure.
	if !bytes.Contains(reply.Data, []byte(`"error"`)) && bytes.Contains(reply.Data, []byte(`"stream":`)) &&
		bytes.Contains(reply.Data, []byte(`"seq":`)) {
		return nil
	}
	var ack struct {
		Stream string              `json:"stream"`
		Seq    uint64              `json:"seq"`
		Error  *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &ack); err != nil {
		return fmt.Errorf("an answer that is not JetStream's: %w", err)
	}
	switch {
	case ack.Error != nil:
		return ack.Error
	case ack.Stream == "" || ack.Seq == 0:
		return errors.New("an answer that is not JetStream's acknowledgement")
	}
	return nil
}

// subjectOf returns the subject of events of type typ.
func (s *natsSink) subjectOf(typ string) string {
	subj, ok := s.subjects[typ]
	if !ok {
		if len(s.subjects) >= 1024 {
			clear(s.subjects) // import types are many; writ's are few
		}
		subj = s.subject + "." + typ
		s.subjects[typ] = subj
	}
	return subj
}

// failed explains a publish the stream did not acknowledge.
func (s *natsSink) failed(m Message, err error) error {
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("publishing event %d to %s.%s: no JetStream stream takes the subject (create one for %q)", m.Index, s.subject, m.Type, s.subject+".>")
	}
	return fmt.Errorf("publishing event %d to %s.%s: %w", m.Index, s.subject, m.Type, err)
}

func (s *natsSink) close() error {
	if s.nc != nil {
		s.nc.Close()
		s.nc, s.sub = nil, nil
	}
	return nil
}
