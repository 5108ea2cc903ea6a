package sink

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
// batch. Publishes are pipelined; none is retried by the client (a retry
// could overtake the messages after it): a batch that fails is sent again
// whole, from the sink's cursor.
type natsSink struct {
	name    string
	url     string
	subject string
	creds   string
	origin  string
	timeout time.Duration
	batch   int
	nc      *nats.Conn
	js      jetstream.JetStream
}

func newNATSSink(c config.SinkConfig, origin string) *natsSink {
	return &natsSink{name: c.Name, url: c.URL, subject: c.Subject, creds: c.CredsFile, origin: origin,
		timeout: c.Timeout, batch: c.Batch}
}

// connect connects once; the connection then reconnects by itself.
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
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4*s.batch), jetstream.WithPublishAsyncTimeout(s.timeout))
	if err != nil {
		nc.Close()
		return err
	}
	s.nc, s.js = nc, js
	return nil
}

func (s *natsSink) deliver(ctx context.Context, msgs []Message) error {
	if err := s.connect(); err != nil {
		return err
	}
	acks := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		nm := nats.NewMsg(s.subject + "." + m.Type)
		nm.Data = m.Body
		nm.Header.Set(IndexHeader, strconv.FormatUint(m.Index, 10))
		nm.Header.Set(OriginHeader, s.origin)
		nm.Header.Set(LeafHashHeader, m.LeafHash)
		ack, err := s.js.PublishMsgAsync(nm, jetstream.WithMsgID(m.ID), jetstream.WithRetryAttempts(0))
		if err != nil {
			return s.failed(m, err)
		}
		acks = append(acks, ack)
	}
	for i, ack := range acks {
		select {
		case <-ack.Ok():
		case err := <-ack.Err():
			return s.failed(msgs[i], err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// failed explains a publish the stream did not acknowledge.
func (s *natsSink) failed(m Message, err error) error {
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) {
		return fmt.Errorf("publishing event %d to %s.%s: no JetStream stream takes the subject (create one for %q)", m.Index, s.subject, m.Type, s.subject+".>")
	}
	return fmt.Errorf("publishing event %d to %s.%s: %w", m.Index, s.subject, m.Type, err)
}

func (s *natsSink) close() error {
	if s.nc != nil {
		s.nc.Close()
		s.nc = nil
	}
	return nil
}
