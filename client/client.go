// Package client is a Go client for writ's HTTP API.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/writhq/writ/api"
)

// Client talks to one writ server.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client for the server at baseURL (such as
// http://127.0.0.1:7780) that authenticates with token, if not empty.
func New(baseURL, token string) *Client {
	return &Client{
		base:  strings.TrimRight(baseURL, "/"),
		token: token,
		http: &http.Client{
			Timeout:   60 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second},
		},
	}
}

// Error is an error answer from the server.
type Error struct {
	Status int
	Body   api.Error
}

func (e *Error) Error() string {
	if e.Body.Detail != "" {
		return fmt.Sprintf("server: %s (%d %s)", e.Body.Detail, e.Status, e.Body.Error)
	}
	return fmt.Sprintf("server: %d %s", e.Status, e.Body.Error)
}

// Do sends a request with a JSON body (if in is not nil) and decodes a JSON
// answer into out (if not nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return errorFrom(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding %s %s answer: %w", method, path, err)
	}
	return nil
}

// Get fetches a raw resource, such as /ledger/checkpoint or a tile.
func (c *Client) Get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		return nil, errorFrom(resp.StatusCode, data)
	}
	return data, nil
}

// AppendEvent appends one event and returns its index.
func (c *Client) AppendEvent(ctx context.Context, e api.Event) (uint64, error) {
	var out api.Appended
	err := c.Do(ctx, http.MethodPost, "/v1/ledger/events", e, &out)
	return out.Index, err
}

// AppendEvents appends events together, at consecutive indexes in order, and
// returns the index of the first. The server takes all or none.
func (c *Client) AppendEvents(ctx context.Context, events []api.Event) (uint64, error) {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for _, e := range events {
		if err := enc.Encode(e); err != nil {
			return 0, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/ledger/events", &body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode >= 400 {
		return 0, errorFrom(resp.StatusCode, data)
	}
	var out api.AppendedAll
	if err := json.Unmarshal(data, &out); err != nil {
		return 0, fmt.Errorf("decoding append answer: %w", err)
	}
	if out.Count != len(events) {
		return 0, fmt.Errorf("server appended %d events, sent %d", out.Count, len(events))
	}
	return out.First, nil
}

// Erase erases one payload body and returns the index of the erasure event.
func (c *Client) Erase(ctx context.Context, req api.Erase) (uint64, error) {
	var out api.Appended
	err := c.Do(ctx, http.MethodPost, "/v1/ledger/erasures", req, &out)
	return out.Index, err
}

func errorFrom(status int, body []byte) *Error {
	e := &Error{Status: status}
	if json.Unmarshal(body, &e.Body) != nil || e.Body.Error == "" {
		e.Body = api.Error{Error: http.StatusText(status)}
	}
	return e
}
