package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// goUpstream is an MCP server built with the Go SDK, served over
// Streamable HTTP, that remembers the credentials it was sent.
type goUpstream struct {
	url string
	srv *mcp.Server

	mu      sync.Mutex
	headers []http.Header
	// open counts the sessions opened and not yet ended by DELETE, and
	// peak the most open at once, as the HTTP requests show them.
	open, peak int
	// progressed, when set, is called after each progress notification
	// the progress tool sends, before it goes on.
	progressed func(ctx context.Context, step int) error

	// The block tool tells started when a call begins, then answers
	// when release is closed, or ends when its call is cancelled and
	// tells cancelled.
	started   chan struct{}
	release   chan struct{}
	cancelled chan struct{}
}

// newGoUpstream returns the state of an upstream's tools.
func newGoUpstream() *goUpstream {
	return &goUpstream{started: make(chan struct{}, 16), release: make(chan struct{}), cancelled: make(chan struct{}, 16)}
}

func (u *goUpstream) setProgressed(f func(ctx context.Context, step int) error) {
	u.mu.Lock()
	u.progressed = f
	u.mu.Unlock()
}

func (u *goUpstream) afterProgress(ctx context.Context, step int) error {
	u.mu.Lock()
	f := u.progressed
	u.mu.Unlock()
	if f == nil {
		return nil
	}
	return f(ctx, step)
}

// awaitStarted waits for a call of the block tool to begin.
func (u *goUpstream) awaitStarted(t testing.TB) {
	t.Helper()
	awaitSignal(t, u.started, "the upstream's block tool was not called")
}

// awaitCancelled waits for a call of the block tool to be cancelled.
func (u *goUpstream) awaitCancelled(t testing.TB) {
	t.Helper()
	awaitSignal(t, u.cancelled, "the upstream's block call was not cancelled")
}

// awaitSignal waits up to 30s for a signal on c, and fails the test,
// saying what did not happen, without one.
func awaitSignal(t testing.TB, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(30 * time.Second):
		t.Fatal(what + " within 30s")
	}
}

// peakSessions returns the most sessions open at once so far.
func (u *goUpstream) peakSessions() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.peak
}

// sessions counts the upstream's open MCP sessions.
func (u *goUpstream) sessions() int {
	n := 0
	for range u.srv.Sessions() {
		n++
	}
	return n
}

func (u *goUpstream) seen() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]http.Header(nil), u.headers...)
}

type echoIn struct {
	Message  string `json:"message"`
	Password string `json:"password,omitempty"`
}

type echoOut struct {
	Echo   string `json:"echo"`
	Secret string `json:"secret"`
}

type bigIn struct {
	Bytes int `json:"bytes"`
}

type progressIn struct {
	Steps int  `json:"steps"`
	Huge  bool `json:"huge,omitempty"`
}

type slowIn struct {
	Millis int `json:"millis"`
}

const upInstructions = "Call echo to hear yourself."

type failIn struct {
	Data any `json:"data,omitempty"`
}

// newGoServer is the upstream's MCP server: tools echo, slow, session,
// progress, big, block, fail and hidden-tool, a resource and a prompt.
func newGoServer(u *goUpstream) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "go-upstream", Version: "1"}, &mcp.ServerOptions{Instructions: upInstructions})
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echoes its message"},
		func(ctx context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, echoOut, error) {
			return nil, echoOut{Echo: in.Message, Secret: "s3cr3t-output"}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "slow", Description: "answers after millis"},
		func(ctx context.Context, _ *mcp.CallToolRequest, in slowIn) (*mcp.CallToolResult, any, error) {
			select {
			case <-time.After(time.Duration(in.Millis) * time.Millisecond):
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
		})
	mcp.AddTool(s, &mcp.Tool{Name: "session", Description: "names the MCP session it was called in"},
		func(ctx context.Context, r *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: r.Session.ID()}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "progress", Description: "reports steps of progress, then the token it was given"},
		func(ctx context.Context, r *mcp.CallToolRequest, in progressIn) (*mcp.CallToolResult, any, error) {
			tok := r.Params.GetProgressToken()
			for i := 1; tok != nil && i <= in.Steps; i++ {
				p := &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i), Total: float64(in.Steps),
					Message: "upstream step text", Meta: mcp.Meta{"upstream/secret": "side channel"}}
				if in.Huge {
					p.Progress, p.Total = 1.2345678901234567e300+float64(i), 9.87654321e307
				}
				if err := r.Session.NotifyProgress(ctx, p); err != nil {
					return nil, nil, err
				}
				if err := u.afterProgress(ctx, i); err != nil {
					return nil, nil, err
				}
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprint(tok)}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "big", Description: "answers with bytes characters of text"},
		func(ctx context.Context, _ *mcp.CallToolRequest, in bigIn) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Repeat("x", in.Bytes)}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "block", Description: "answers when the test releases it"},
		func(ctx context.Context, _ *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, any, error) {
			u.started <- struct{}{}
			select {
			case <-u.release:
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "released"}}}, nil, nil
			case <-ctx.Done():
				u.cancelled <- struct{}{}
				return nil, nil, ctx.Err()
			}
		})
	mcp.AddTool(s, &mcp.Tool{Name: "fail", Description: "answers a JSON-RPC error with the data it is given"},
		func(ctx context.Context, _ *mcp.CallToolRequest, in failIn) (*mcp.CallToolResult, any, error) {
			data, _ := json.Marshal(in.Data)
			return nil, nil, &jsonrpc.Error{Code: -32042, Message: "the upstream refused", Data: data}
		})
	mcp.AddTool(s, &mcp.Tool{Name: "hidden-tool", Description: "out of every test scope"},
		func(ctx context.Context, _ *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "should not run"}}}, nil, nil
		})
	s.AddResource(&mcp.Resource{URI: "file:///notes/q3.txt", Name: "q3", MIMEType: "text/plain"},
		func(ctx context.Context, r *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: r.Params.URI, MIMEType: "text/plain", Text: "Q3 notes"}}}, nil
		})
	s.AddResource(&mcp.Resource{URI: "file:///private/keys.txt", Name: "keys", MIMEType: "text/plain"},
		func(ctx context.Context, r *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: r.Params.URI, MIMEType: "text/plain", Text: "private"}}}, nil
		})
	s.AddPrompt(&mcp.Prompt{Name: "greet", Arguments: []*mcp.PromptArgument{{Name: "who"}}},
		func(ctx context.Context, r *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "hello " + r.Params.Arguments["who"]}}}}, nil
		})
	return s
}

func startGoUpstream(t testing.TB) *goUpstream {
	t.Helper()
	u := newGoUpstream()
	s := newGoServer(u)
	u.srv = s
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.headers = append(u.headers, r.Header.Clone())
		if r.Method == http.MethodDelete {
			u.open--
		}
		u.mu.Unlock()
		h.ServeHTTP(w, r)
		if r.Header.Get("Mcp-Session-Id") == "" && w.Header().Get("Mcp-Session-Id") != "" {
			u.mu.Lock()
			u.open++
			u.peak = max(u.peak, u.open)
			u.mu.Unlock()
		}
	}))
	t.Cleanup(ts.Close)
	u.url = ts.URL
	return u
}
