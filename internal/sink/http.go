package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/notify"
)

// Headers of an HTTP sink's requests. The signature is the approvers'
// webhook's (notify.SignatureHeader over notify.TimestampHeader), so one
// receiver checks both the same way.
const (
	// IdempotencyKeyHeader carries "<origin>/<first index>-<last index>":
	// the same for every attempt at the same batch. A batch left without
	// an answer is sent again as it was by the process that sent it; one
	// that took over after a crash sends from the cursor in batches of its
	// own, so receivers drop duplicates by each record's index.
	IdempotencyKeyHeader = "Idempotency-Key"
	SignatureHeader      = notify.SignatureHeader
	TimestampHeader      = notify.TimestampHeader
)

// httpSink POSTs each batch: a JSON array of the records (CloudEvents'
// batched mode for cloudevents), or Splunk HEC events.
type httpSink struct {
	url    string
	origin string
	format string
	secret []byte // HMAC key; nil sends no signature
	hec    *config.SplunkHECConfig
	token  string // Splunk HEC token
	client *http.Client
	now    func() time.Time
	// unanswered holds, in order, the last index of each batch sent
	// without a 2xx answer and not yet acknowledged since: the receiver
	// may hold it.
	unanswered []uint64
}

// deliver POSTs msgs as one batch; but where they hold a batch sent before
// without an answer, it first sends that one again as it was. A retry then
// carries the Idempotency-Key of the attempt it repeats, even when the log
// has grown since and the sink is handed more events from the same first.
func (s *httpSink) deliver(ctx context.Context, msgs []Message) error {
	first, last := msgs[0].Index, msgs[len(msgs)-1].Index
	// Below the first: acknowledged since, or taken over by another.
	s.unanswered = slices.DeleteFunc(s.unanswered, func(end uint64) bool { return end < first })
	for len(msgs) > 0 {
		part := msgs[:s.batchLen(msgs)]
		if err := s.post(ctx, part); err != nil {
			end := part[len(part)-1].Index
			if i, seen := slices.BinarySearch(s.unanswered, end); !seen {
				s.unanswered = slices.Insert(s.unanswered, i, end)
			}
			return err
		}
		msgs = msgs[len(part):]
	}
	s.unanswered = slices.DeleteFunc(s.unanswered, func(end uint64) bool { return end <= last })
	return nil
}

// batchLen is how many of msgs the next request sends: up to the end of
// the first unanswered batch among them, else all.
func (s *httpSink) batchLen(msgs []Message) int {
	from, to := msgs[0].Index, msgs[len(msgs)-1].Index
	for _, end := range s.unanswered {
		if end >= from && end < to {
			return int(end-from) + 1
		}
	}
	return len(msgs)
}

// post sends msgs in one request.
func (s *httpSink) post(ctx context.Context, msgs []Message) error {
	body, ctype := s.body(msgs)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set(IdempotencyKeyHeader, s.origin+"/"+strconv.FormatUint(msgs[0].Index, 10)+"-"+strconv.FormatUint(msgs[len(msgs)-1].Index, 10))
	if s.secret != nil {
		ts := strconv.FormatInt(s.now().Unix(), 10)
		req.Header.Set(TimestampHeader, ts)
		req.Header.Set(SignatureHeader, notify.Sign(s.secret, ts, body))
	}
	if s.hec != nil {
		req.Header.Set("Authorization", "Splunk "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	// The answer's body is the receiver's business (and may echo what it
	// was sent): only its status is kept.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s answered %s", s.url, resp.Status)
	}
	return nil
}

// body is the request body of a batch and its content type.
func (s *httpSink) body(msgs []Message) ([]byte, string) {
	var b bytes.Buffer
	if s.hec != nil {
		for _, m := range msgs {
			s.hecEvent(&b, m)
			b.WriteByte('\n')
		}
		return b.Bytes(), "application/json"
	}
	b.WriteByte('[')
	for i, m := range msgs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(m.Body)
	}
	b.WriteByte(']')
	if s.format == config.FormatCloudEvents {
		return b.Bytes(), "application/cloudevents-batch+json"
	}
	return b.Bytes(), "application/json"
}

// hecEvent writes m as a Splunk HTTP Event Collector event: the record as
// "event", and the index, origin, type and leaf hash as indexed fields.
func (s *httpSink) hecEvent(b *bytes.Buffer, m Message) {
	ev := struct {
		Time       json.Number       `json:"time"`
		Source     string            `json:"source,omitempty"`
		Sourcetype string            `json:"sourcetype"`
		Index      string            `json:"index,omitempty"`
		Event      json.RawMessage   `json:"event"`
		Fields     map[string]string `json:"fields"`
	}{
		Time:   json.Number(strconv.FormatFloat(float64(m.Time.UnixMilli())/1000, 'f', 3, 64)),
		Source: s.hec.Source, Sourcetype: s.hec.Sourcetype, Index: s.hec.Index, Event: m.Body,
		Fields: map[string]string{"writ_index": strconv.FormatUint(m.Index, 10), "writ_origin": s.origin,
			"writ_type": m.Type, "writ_leaf_hash": m.LeafHash},
	}
	if ev.Sourcetype == "" {
		ev.Sourcetype = "writ:" + s.format
	}
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(ev) // nothing in it fails to encode
	b.Truncate(b.Len() - 1)
}

func (s *httpSink) close() error {
	s.client.CloseIdleConnections()
	return nil
}
