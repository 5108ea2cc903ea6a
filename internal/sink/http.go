package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
	// the same for every attempt at the same batch.
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
}

func (s *httpSink) deliver(ctx context.Context, msgs []Message) error {
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
