package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/writhq/writ/internal/printable"
)

// Client submits checkpoints to one C2SP tlog-witness.
type Client struct {
	// URL is the witness's submission prefix; the client POSTs
	// <URL>add-checkpoint.
	URL string
	Key *Key
	// HTTP is the client used; nil means http.DefaultClient. Requests are
	// bounded by the context.
	HTTP *http.Client
}

// ConflictError is a 409 answer: the witness's latest cosigned size for
// this log is Size, not the old size sent. The caller resubmits with a
// consistency proof from Size.
type ConflictError struct {
	Size uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("the witness has cosigned size %d of this log", e.Size)
}

// Reasons a witness refuses a checkpoint, as a RefusedError and the
// witness.refused event name them.
const (
	// ReasonBadProof: the consistency proof from the witness's size does
	// not verify (422): the log is not the one the witness saw.
	ReasonBadProof = "bad_proof"
	// ReasonRollback: the witness has cosigned a larger tree than the log
	// now holds.
	ReasonRollback = "rollback"
	// ReasonFork: at the size the witness cosigned, the log's root is
	// another.
	ReasonFork = "fork"
	// ReasonBadSignature: the witness does not trust the log's key (403).
	ReasonBadSignature = "bad_signature"
	// ReasonUnknownLog: the witness does not know the log's origin (404).
	ReasonUnknownLog = "unknown_log"
	// ReasonBadRequest: the witness found the request malformed (400).
	ReasonBadRequest = "bad_request"
	// ReasonRefused: another 4xx answer.
	ReasonRefused = "refused"
)

// RefusedError is a witness's refusal of a checkpoint: a 4xx answer other
// than 409 (and than 408 and 429, which ask to wait), or a conflict that
// shows a rollback or a fork. It is not retried.
type RefusedError struct {
	Status int    // the HTTP status, 0 when the refusal was read from a 409
	Reason string // one of the Reason constants
	// WitnessSize is the size the witness said it has cosigned, when known.
	WitnessSize *uint64
	// Detail is the witness's own words (its answer's body, printable and
	// bounded), or writ's when the refusal was worked out from a 409.
	Detail string
}

func (e *RefusedError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("the witness refused the checkpoint (%d %s, %s): %s", e.Status, http.StatusText(e.Status), e.Reason, e.Detail)
	}
	return fmt.Sprintf("the witness refused the checkpoint (%s): %s", e.Reason, e.Detail)
}

// reasonOf names the refusal an HTTP status stands for.
func reasonOf(status int) string {
	switch status {
	case http.StatusUnprocessableEntity:
		return ReasonBadProof
	case http.StatusForbidden:
		return ReasonBadSignature
	case http.StatusNotFound:
		return ReasonUnknownLog
	case http.StatusBadRequest:
		return ReasonBadRequest
	}
	return ReasonRefused
}

// AddCheckpoint submits the signed checkpoint with the consistency proof
// from old, and returns the witness's verified cosignature. Errors: a
// *ConflictError (409: resubmit from its size), a *RefusedError, or any
// other error for a failure worth retrying later (the witness is
// unreachable, slow, overloaded or answered nonsense).
func (c *Client) AddCheckpoint(ctx context.Context, old uint64, proof [][]byte, checkpoint []byte) (Cosignature, error) {
	text, _, err := splitNote(checkpoint)
	if err != nil {
		return Cosignature{}, fmt.Errorf("checkpoint: %w", err)
	}
	var b bytes.Buffer
	b.WriteString("old " + strconv.FormatUint(old, 10) + "\n")
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	b.WriteString("\n")
	b.Write(checkpoint)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"add-checkpoint", &b)
	if err != nil {
		return Cosignature{}, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Cosignature{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return Cosignature{}, fmt.Errorf("reading the witness's answer: %w", err)
	}
	return c.answer(resp.StatusCode, resp.Header.Get("Content-Type"), body, text)
}

// answer interprets a witness's answer to add-checkpoint for the checkpoint
// whose note text is text.
func (c *Client) answer(status int, contentType string, body, text []byte) (Cosignature, error) {
	switch {
	case status == http.StatusOK:
		lines, err := ParseResponse(body)
		if err != nil {
			return Cosignature{}, fmt.Errorf("the witness's answer: %w", err)
		}
		// Lines by other keys are ignored, as the spec asks.
		for _, l := range lines {
			if !c.Key.owns(l) {
				continue
			}
			t, err := c.Key.VerifyLine(text, l)
			if err != nil {
				return Cosignature{}, fmt.Errorf("the witness's cosignature: %w", err)
			}
			return Cosignature{Key: c.Key.vkey, Time: t, Line: l}, nil
		}
		return Cosignature{}, fmt.Errorf("the witness answered without a cosignature by its configured key %s", c.Key.vkey)
	case status == http.StatusConflict:
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil || mt != "text/x.tlog.size" {
			return Cosignature{}, fmt.Errorf("the witness answered 409 with Content-Type %q, not text/x.tlog.size", clip(contentType, 64))
		}
		n, err := ParseSize(body)
		if err != nil {
			return Cosignature{}, fmt.Errorf("the witness's 409 answer: %w", err)
		}
		return Cosignature{}, &ConflictError{Size: n}
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests:
		return Cosignature{}, fmt.Errorf("the witness answered %d %s", status, http.StatusText(status))
	case status >= 400 && status < 500:
		return Cosignature{}, &RefusedError{Status: status, Reason: reasonOf(status), Detail: detail(body)}
	}
	return Cosignature{}, fmt.Errorf("the witness answered %d %s: %s", status, http.StatusText(status), detail(body))
}

// detail is a witness's answer body made safe to log and record: one
// printable line, bounded.
func detail(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if s == "" {
		return "(no detail)"
	}
	return clip(s, 200)
}

// clip shows s's invisible characters and cuts it to at most n runes.
func clip(s string, n int) string {
	s = printable.ShowString(strings.ToValidUTF8(s, "\uFFFD"))
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// DefaultTimeout bounds one add-checkpoint exchange.
const DefaultTimeout = 10 * time.Second

// IsRefusal reports whether err is a witness's refusal.
func IsRefusal(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}
