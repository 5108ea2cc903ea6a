package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

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
	Steps int `json:"steps"`
}

type slowIn struct {
	Millis int `json:"millis"`
}

const upInstructions = "Call echo to hear yourself."

// newGoServer is the upstream's MCP server: tools echo, slow, session,
// progress, big and hidden-tool, a resource and a prompt.
func newGoServer() *mcp.Server {
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
				if err := r.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok,
					Progress: float64(i), Total: float64(in.Steps), Message: "upstream step text"}); err != nil {
					return nil, nil, err
				}
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprint(tok)}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "big", Description: "answers with bytes characters of text"},
		func(ctx context.Context, _ *mcp.CallToolRequest, in bigIn) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Repeat("x", in.Bytes)}}}, nil, nil
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
	s := newGoServer()
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	u := &goUpstream{srv: s}
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
