package sink

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/writhq/writ/internal/config"
)

// TestNATSAcknowledgements: a batch is done once JetStream has answered
// each of its messages, a duplicate's answer included; the answers to an
// earlier batch's messages, arriving late, or an answer given twice,
// count for nothing; the first refusal fails the batch with its reason.
func TestNATSAcknowledgements(t *testing.T) {
	s := newNATSSink(config.SinkConfig{Name: "t", Subject: "writ.events"}, "o")
	s.inbox = "_INBOX.x"
	ack := func(n uint64, data string, hdr nats.Header) {
		s.acknowledged(&nats.Msg{Subject: s.inbox + "." + strconv.FormatUint(n, 10), Data: []byte(data), Header: hdr})
	}
	stored := `{"stream":"WRIT","seq":1}`
	msgs := func(from uint64, n int) []Message {
		out := make([]Message, n)
		for i := range out {
			out[i] = Message{Index: from + uint64(i), Type: "x"}
		}
		return out
	}
	isDone := func(done <-chan struct{}) bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}

	first, done := s.begin(msgs(0, 3))
	ack(first, stored, nil)
	ack(first+1, `{"stream":"WRIT","seq":2,"duplicate":true}`, nil)
	if isDone(done) {
		t.Fatal("done before its last message was answered")
	}
	s.end() // given up on: its last answer comes late

	first, done = s.begin(msgs(3, 3))
	if first != 3 {
		t.Fatalf("the second batch is numbered from %d", first)
	}
	ack(2, stored, nil) // the first batch's
	ack(first, stored, nil)
	ack(first, stored, nil) // twice: counts once
	ack(first+1, stored, nil)
	if isDone(done) {
		t.Fatal("done with a message unanswered")
	}
	ack(first+2, `{"stream":"error","seq":9}`, nil) // a stream named "error" stored it
	if !isDone(done) || s.b.err != nil {
		t.Fatalf("done %v, err %v", isDone(done), s.b.err)
	}
	s.end()

	first, done = s.begin(msgs(6, 3))
	ack(first, stored, nil)
	ack(first+1, `{"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum allowed"},"stream":"WRIT"}`, nil)
	if !isDone(done) || s.b.err == nil || !strings.Contains(s.b.err.Error(), "publishing event 7 to writ.events.x") ||
		!strings.Contains(s.b.err.Error(), "maximum allowed") {
		t.Fatalf("done %v, err %v", isDone(done), s.b.err)
	}
	ack(first+2, stored, nil) // after the failure: nothing changes
	s.end()

	first, done = s.begin(msgs(9, 1))
	ack(first, "", nats.Header{"Status": {"503"}})
	if !isDone(done) || s.b.err == nil || !strings.Contains(s.b.err.Error(), "no JetStream stream") {
		t.Fatalf("no responders: done %v, err %v", isDone(done), s.b.err)
	}
	s.end()
	if err := pubAckError(&nats.Msg{Data: []byte(`{"error":`)}); err == nil || errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("a broken answer: %v", err)
	}
	// A reply that is not JetStream's (a core subscriber answering on the
	// subject) stored nothing.
	for _, data := range []string{`{"ok":true}`, `pong`, `{"stream":"WRIT"}`} {
		if err := pubAckError(&nats.Msg{Data: []byte(data)}); err == nil {
			t.Errorf("the answer %s counts as stored", data)
		}
	}
}
