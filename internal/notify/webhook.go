// Package notify tells approvers that a decision waits for them: it posts
// each pending approval as JSON to a configured webhook, signed with HMAC.
//
// Delivery is best effort and never on the decision path: requests are
// queued and sent by one goroutine with retries; a full queue drops the
// notification (and logs it), because approvers can always list pending
// approvals from the API. The ledger, not the webhook, is the record.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
const SignatureHeader = "X-Writ-Signature"

// TimestampHeader carries the Unix time the signature covers, so a receiver
// can refuse replays of old notifications.
const TimestampHeader = "X-Writ-Timestamp"

// Config configures a Webhook.
type Config struct {
	// URL receives a POST per pending approval.
	URL string
	// SecretFile holds the HMAC key; its contents are never logged.
	SecretFile string
	// Timeout bounds one delivery attempt. Default 5s.
	Timeout time.Duration
	// Attempts is how many times a notification is tried. Default 3.
	Attempts int
	Logger   *slog.Logger
	Client   *http.Client
}

// Webhook delivers notifications in the background.
type Webhook struct {
	cfg    Config
	secret []byte
	queue  chan []byte
	done   chan struct{}
	log    *slog.Logger
}

// New reads the secret and starts the sender.
func New(cfg Config) (*Webhook, error) {
	if cfg.URL == "" {
		return nil, errors.New("notify: webhook URL is empty")
	}
	if !strings.HasPrefix(cfg.URL, "https://") && !strings.HasPrefix(cfg.URL, "http://") {
		return nil, fmt.Errorf("notify: webhook URL %q: want http:// or https://", cfg.URL)
	}
	raw, err := os.ReadFile(cfg.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("notify: reading the webhook secret file: %w", err)
	}
	secret := bytes.TrimSpace(raw)
	if len(secret) < 16 {
		return nil, errors.New("notify: the webhook secret must be at least 16 bytes")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	w := &Webhook{cfg: cfg, secret: secret, queue: make(chan []byte, 1024), done: make(chan struct{}), log: cfg.Logger}
	go w.run()
	return w, nil
}

// Notification is the JSON body posted for one pending approval.
type Notification struct {
	Event    string `json:"event"` // "approval.requested"
	Approval any    `json:"approval"`
}

// Notify queues a notification about v (typically an api.PendingApproval).
// It never blocks; a full queue drops the notification.
func (w *Webhook) Notify(v any) {
	body, err := json.Marshal(Notification{Event: "approval.requested", Approval: v})
	if err != nil {
		w.log.Error("webhook: encoding notification", "err", err)
		return
	}
	select {
	case w.queue <- body:
	default:
		w.log.Warn("webhook: queue full, notification dropped (approvers can list pending approvals)")
	}
}

// Close stops the sender after the queued notifications are tried, or when
// ctx ends.
func (w *Webhook) Close(ctx context.Context) error {
	close(w.queue)
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Webhook) run() {
	defer close(w.done)
	for body := range w.queue {
		for attempt := 1; attempt <= w.cfg.Attempts; attempt++ {
			err := w.send(body, time.Now())
			if err == nil {
				break
			}
			w.log.Warn("webhook delivery failed", "attempt", attempt, "err", err)
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
	}
}

func (w *Webhook) send(body []byte, now time.Time) error {
	ts := strconv.FormatInt(now.Unix(), 10)
	req, err := http.NewRequest(http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(TimestampHeader, ts)
	req.Header.Set(SignatureHeader, Sign(w.secret, ts, body))
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// Sign returns the signature header value for a body sent at timestamp ts.
func Sign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header as a receiver would, in constant time.
func Verify(secret []byte, ts string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, ts, body)), []byte(header))
}
