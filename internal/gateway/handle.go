package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/enforce"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/resource"
	"github.com/writhq/writ/internal/task"
)

// JSON-RPC error codes the gateway answers with, besides the standard
// ones; from the implementation-defined range, clear of the codes the MCP
// SDKs give meaning to.
const (
	// CodeDenied: policy denied the request (data carries the decision).
	CodeDenied = -32010
	// CodeUnavailable: the upstream could not be reached or did not answer.
	CodeUnavailable = -32011
	// CodeNotRecorded: writ could not record the call durably.
	CodeNotRecorded = -32012
)

// Operations of MCP requests as policy sees them.
const (
	OpCall = "call"
	OpRead = "read"
	OpGet  = "get"
)

// Names of a server's calls as policy sees them (contract): tool T of
// server S is tool "S.T", resource "mcp://S/tools/T"; a resource read is
// tool "S.resources", resource "mcp://S/resources/<uri>"; a prompt get is
// tool "S.prompts", resource "mcp://S/prompts/<name>". Names are
// percent-encoded into the resource (resource.EscapePath), so that a name
// cannot add a query or fragment to it; one holding a "." or ".." segment
// makes a resource that Authorize refuses. The uri of a resource read is
// put in normal form by the caller (resource.Normalize).
func ToolName(server, tool string) string { return server + "." + tool }
func ToolResource(server, tool string) string {
	return "mcp://" + server + "/tools/" + resource.EscapePath(tool)
}
func ResourceTool(server string) string          { return server + ".resources" }
func ResourceResource(server, uri string) string { return "mcp://" + server + "/resources/" + uri }
func PromptTool(server string) string            { return server + ".prompts" }
func PromptResource(server, name string) string {
	return "mcp://" + server + "/prompts/" + resource.EscapePath(name)
}

// middleware answers the methods writ mediates and forwards the listing
// methods it does not filter; the rest (initialize, ping…) stay with the
// SDK's server.
func (g *Gateway) middleware(name string, u *upstream) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (res mcp.Result, err error) {
			switch method {
			case "tools/list", "tools/call", "resources/read", "prompts/get",
				"resources/list", "resources/templates/list", "prompts/list":
			case "initialize", "server/discover":
				res, err := next(ctx, method, req)
				relayInstructions(u, res)
				return res, err
			default:
				return next(ctx, method, req)
			}
			c, err := g.call(name, u, req)
			if err != nil {
				return nil, err
			}
			ctx, span := g.traceCall(ctx, c, method, req)
			defer func() { endCall(span, res, err) }()
			// What goes upstream is cancelled when the task ends; the
			// decisions and records are not (they finish, or fail whole).
			var done func()
			c.flight, done = g.flights.Begin(ctx, c.v.cred)
			defer done()
			switch p := req.GetParams().(type) {
			case *mcp.ListToolsParams:
				return c.listTools(ctx, p)
			case *mcp.CallToolParamsRaw:
				return c.callTool(ctx, p)
			case *mcp.ReadResourceParams:
				return c.readResource(ctx, p)
			case *mcp.GetPromptParams:
				return c.getPrompt(ctx, p)
			case *mcp.ListResourcesParams:
				return forward(ctx, c, func(ctx context.Context, cs *mcp.ClientSession) (*mcp.ListResourcesResult, error) {
					return cs.ListResources(ctx, p)
				})
			case *mcp.ListResourceTemplatesParams:
				return forward(ctx, c, func(ctx context.Context, cs *mcp.ClientSession) (*mcp.ListResourceTemplatesResult, error) {
					return cs.ListResourceTemplates(ctx, p)
				})
			case *mcp.ListPromptsParams:
				return forward(ctx, c, func(ctx context.Context, cs *mcp.ClientSession) (*mcp.ListPromptsResult, error) {
					return cs.ListPrompts(ctx, p)
				})
			}
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "unexpected parameters for " + method}
		}
	}
}

// relayInstructions gives the agent the upstream's instructions (how to
// use its tools), as writ's latest handshake with it got them: an agent's
// handshake never waits for the upstream.
func relayInstructions(u *upstream, res mcp.Result) {
	text := u.instructionsText()
	switch r := res.(type) {
	case *mcp.InitializeResult:
		r.Instructions = text
	case *mcp.DiscoverResult:
		r.Instructions = text
	}
}

// isNil reports whether v is nil or a nil pointer (methods whose
// parameters are optional arrive with a nil one).
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// call is one mediated request: who makes it and where it goes.
type call struct {
	g      *Gateway
	server string
	u      *upstream
	req    mcp.Request
	// timeout bounds the call upstream: the server's, or its tool's.
	timeout time.Duration
	v       verified
	rc      task.Request
	// flight is the request's context for what goes upstream, cancelled
	// when the task ends or the credential is revoked.
	flight context.Context
}

func (g *Gateway) call(name string, u *upstream, req mcp.Request) (*call, error) {
	extra := req.GetExtra()
	var v verified
	ok := false
	if extra != nil && extra.TokenInfo != nil {
		v, ok = extra.TokenInfo.Extra["writ"].(verified)
	}
	if !ok {
		// Fail closed: no verified task credential, no call.
		return nil, &jsonrpc.Error{Code: CodeDenied, Message: "no verified task credential for this request"}
	}
	trace := ""
	if p, ok := req.GetParams().(interface{ GetMeta() map[string]any }); ok && !isNil(p) {
		if s, ok := p.GetMeta()["traceparent"].(string); ok {
			trace = enforce.TraceID(s)
		}
	}
	if trace == "" && extra.Header != nil {
		trace = enforce.TraceID(extra.Header.Get("Traceparent"))
	}
	return &call{g: g, server: name, u: u, req: req, timeout: u.timeout, v: v, rc: task.Request{Gateway: policy.GatewayMCP, Source: v.source, TraceID: trace}}, nil
}

func (c *call) dataClass(tool string) string {
	if t, ok := c.u.cfg.Tools[tool]; ok && t.DataClass != "" {
		return t.DataClass
	}
	if c.u.cfg.DataClass != "" {
		return c.u.cfg.DataClass
	}
	return "internal"
}

// upstreamDo runs f against the task's upstream session within the server's
// timeout. A failure that is neither the upstream's own JSON-RPC answer
// nor a timeout drops the session, so that the next call reconnects (or
// restarts a stdio server); both are reported as CodeUnavailable. A call
// whose ctx the task's end cancelled is not sent, or is cancelled
// upstream, and answered as such.
func upstreamDo[R any](ctx context.Context, c *call, f func(context.Context, *mcp.ClientSession) (R, error)) (R, error) {
	var zero R
	if task.CutShort(ctx) != nil {
		return zero, errCancelled(ctx)
	}
	conn, err := c.u.acquire(ctx, c.v.cred.TaskID, c.timeout)
	if task.CutShort(ctx) != nil {
		if err == nil {
			c.u.release(conn)
		}
		return zero, errCancelled(ctx)
	}
	if err != nil {
		return zero, &jsonrpc.Error{Code: CodeUnavailable, Message: err.Error()}
	}
	defer c.u.release(conn)
	cctx, cancel := detach(ctx, c.timeout)
	defer cancel()
	r, err := f(cctx, conn.cs)
	if err == nil {
		return r, nil
	}
	if task.CutShort(ctx) != nil {
		// Cancelled for the task's end: the SDK tells the upstream.
		c.u.cancelledCall(conn)
		return zero, errCancelled(ctx)
	}
	var we *jsonrpc.Error
	if errors.As(err, &we) {
		return zero, we
	}
	if ctx.Err() != nil {
		return zero, &jsonrpc.Error{Code: CodeUnavailable, Message: "the request was cancelled"}
	}
	if errors.Is(cctx.Err(), context.DeadlineExceeded) {
		// A slow tool is not a broken session: other agents' calls on it
		// carry on (the SDK tells the upstream this one is cancelled).
		return zero, &jsonrpc.Error{Code: CodeUnavailable, Message: fmt.Sprintf("upstream %s did not answer within %s", c.server, c.timeout)}
	}
	c.u.drop(conn)
	return zero, &jsonrpc.Error{Code: CodeUnavailable, Message: fmt.Sprintf("upstream %s failed: %s", c.server, c.u.scrub(err))}
}

// errCancelled answers a request cancelled because its task ended.
func errCancelled(ctx context.Context) error {
	return &jsonrpc.Error{Code: CodeDenied, Message: "writ cancelled this request: " + context.Cause(ctx).Error()}
}

// forward relays a listing, which the ledger does not record: an error
// the upstream answers it with reaches the agent without its data member.
func forward[R mcp.Result](ctx context.Context, c *call, f func(context.Context, *mcp.ClientSession) (R, error)) (mcp.Result, error) {
	r, err := upstreamDo(c.flight, c, f)
	if err != nil {
		return nil, withoutData(err)
	}
	return r, nil
}

// withoutData drops the data member of a JSON-RPC error.
func withoutData(err error) error {
	var we *jsonrpc.Error
	if errors.As(err, &we) && we.Data != nil {
		return &jsonrpc.Error{Code: we.Code, Message: we.Message}
	}
	return err
}

// listTools lists the upstream's tools and keeps those policy lets the
// task see; the hidden ones are recorded (one tools.hidden per listing).
func (c *call) listTools(ctx context.Context, p *mcp.ListToolsParams) (mcp.Result, error) {
	up := &mcp.ListToolsParams{}
	if p != nil {
		up.Cursor = p.Cursor
	}
	res, err := upstreamDo(c.flight, c, func(ctx context.Context, cs *mcp.ClientSession) (*mcp.ListToolsResult, error) {
		return cs.ListTools(ctx, up)
	})
	if err != nil {
		return nil, withoutData(err)
	}
	listed := make([]task.ListedTool, len(res.Tools))
	for i, t := range res.Tools {
		listed[i] = task.ListedTool{Tool: ToolName(c.server, t.Name), Operation: OpCall,
			Resource: ToolResource(c.server, t.Name), DataClass: c.dataClass(t.Name)}
	}
	vis, err := c.g.cfg.Decider.Visible(ctx, c.v.cred, c.server, listed, c.rc)
	if err != nil {
		return nil, c.decisionError(err)
	}
	out := *res
	out.Tools = make([]*mcp.Tool, 0, len(res.Tools))
	for i, t := range res.Tools {
		if vis[i] {
			out.Tools = append(out.Tools, t)
		}
	}
	return &out, nil
}

// callTool authorizes a tool call, forwards it when allowed and records
// its result. A denial is a tool error the agent's framework shows, naming
// the decision.
func (c *call) callTool(ctx context.Context, p *mcp.CallToolParamsRaw) (mcp.Result, error) {
	if p.Name == "" {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "tool name is required"}
	}
	areq := api.Authorize{Tool: ToolName(c.server, p.Name), Operation: OpCall,
		Resource: ToolResource(c.server, p.Name), Arguments: p.Arguments, DataClass: c.dataClass(p.Name)}
	out, err := c.g.cfg.Decider.Authorize(ctx, c.v.cred, areq, c.rc)
	if err != nil {
		return nil, c.decisionError(err)
	}
	if !out.Allow && out.ApprovalRequired {
		var res mcp.Result
		if out, res, err = c.askApprover(ctx, p, areq, out); err != nil || res != nil {
			return res, err
		}
	}
	if !out.Allow {
		return &mcp.CallToolResult{
			IsError: true,
			Content: []mcp.Content{&mcp.TextContent{Text: denialText(areq.Tool, out)}},
			Meta:    denialMeta(out),
		}, nil
	}
	if t := c.u.cfg.Tools[p.Name].Timeout; t > 0 {
		c.timeout = t
	}
	fwd := &mcp.CallToolParams{Meta: upstreamMeta(ctx, forwardMeta(p.Meta)), Name: p.Name, Arguments: p.Arguments}
	if len(p.Arguments) == 0 {
		fwd.Arguments = nil
	}
	defer c.relayProgress(ctx, p, fwd)()
	res, err := upstreamDo(c.flight, c, func(ctx context.Context, cs *mcp.ClientSession) (*mcp.CallToolResult, error) {
		return cs.CallTool(ctx, fwd)
	})
	status := "ok"
	if err != nil || res.IsError {
		status = "error"
	}
	return recordAnswer(ctx, c, out.ActionID, status, res, err)
}

// readResource authorizes a resource read on the URI's normal form, and
// forwards that form: the upstream reads the URI that was decided.
func (c *call) readResource(ctx context.Context, p *mcp.ReadResourceParams) (mcp.Result, error) {
	uri, err := resource.Normalize(p.URI)
	if err != nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("invalid_request: resource URI %q %v", p.URI, err)}
	}
	args, _ := json.Marshal(map[string]string{"uri": uri})
	areq := api.Authorize{Tool: ResourceTool(c.server), Operation: OpRead,
		Resource: ResourceResource(c.server, uri), Arguments: args, DataClass: c.dataClass("")}
	out, err := c.g.cfg.Decider.Authorize(ctx, c.v.cred, areq, c.rc)
	if err != nil {
		return nil, c.decisionError(err)
	}
	if !out.Allow {
		return nil, denialError(areq.Tool, out)
	}
	fwd := &mcp.ReadResourceParams{Meta: upstreamMeta(ctx, forwardMeta(p.Meta)), URI: uri}
	defer c.relayProgress(ctx, p, fwd)()
	res, err := upstreamDo(c.flight, c, func(ctx context.Context, cs *mcp.ClientSession) (*mcp.ReadResourceResult, error) {
		return cs.ReadResource(ctx, fwd)
	})
	return recordAnswer(ctx, c, out.ActionID, statusOf(err), res, err)
}

func (c *call) getPrompt(ctx context.Context, p *mcp.GetPromptParams) (mcp.Result, error) {
	args, _ := json.Marshal(map[string]any{"name": p.Name, "arguments": p.Arguments})
	areq := api.Authorize{Tool: PromptTool(c.server), Operation: OpGet,
		Resource: PromptResource(c.server, p.Name), Arguments: args, DataClass: c.dataClass("")}
	out, err := c.g.cfg.Decider.Authorize(ctx, c.v.cred, areq, c.rc)
	if err != nil {
		return nil, c.decisionError(err)
	}
	if !out.Allow {
		return nil, denialError(areq.Tool, out)
	}
	fwd := &mcp.GetPromptParams{Meta: upstreamMeta(ctx, forwardMeta(p.Meta)), Name: p.Name, Arguments: p.Arguments}
	defer c.relayProgress(ctx, p, fwd)()
	res, err := upstreamDo(c.flight, c, func(ctx context.Context, cs *mcp.ClientSession) (*mcp.GetPromptResult, error) {
		return cs.GetPrompt(ctx, fwd)
	})
	return recordAnswer(ctx, c, out.ActionID, statusOf(err), res, err)
}

// forwardMeta is the part of a request's _meta passed upstream: not the
// protocol's own keys (writ's session with the upstream has its own), nor
// the agent's progress token (relayProgress sets writ's own).
func forwardMeta(m mcp.Meta) mcp.Meta {
	var out mcp.Meta
	for k, v := range m {
		if strings.HasPrefix(k, "io.modelcontextprotocol/") || k == "progressToken" {
			continue
		}
		if out == nil {
			out = mcp.Meta{}
		}
		out[k] = v
	}
	return out
}

func statusOf(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// recordAnswer records the outcome of an authorized call (the upstream's
// result, or the error it failed with, its data member included) as
// action.completed, then answers it with exactly what was recorded. A
// result that cannot be recorded is withheld, and so is one of a call
// whose task ended, or whose credential was revoked, before its outcome
// was recorded: that call is recorded as cancelled.
func recordAnswer[R mcp.Result](ctx context.Context, c *call, actionID, status string, res R, callErr error) (mcp.Result, error) {
	if task.CutShort(c.flight) != nil {
		status = task.StatusCancelled
	}
	var output []byte
	if callErr != nil {
		var we *jsonrpc.Error
		errors.As(callErr, &we)
		e := map[string]any{"code": we.Code, "message": we.Message}
		answer := &jsonrpc.Error{Code: we.Code, Message: we.Message}
		if len(we.Data) > 0 && json.Valid(we.Data) {
			e["data"], answer.Data = we.Data, we.Data
		}
		output, _ = json.Marshal(map[string]any{"error": e})
		callErr = answer
	} else {
		var err error
		if output, err = json.Marshal(res); err != nil {
			callErr = &jsonrpc.Error{Code: CodeUnavailable, Message: "upstream " + c.server + " returned a result writ cannot encode"}
			status, output = "error", []byte(`{"error":{"message":"unencodable result"}}`)
		}
	}
	// The record does not depend on the agent staying connected.
	rctx := context.WithoutCancel(ctx)
	held, err := c.g.cfg.Decider.RecordHeldResult(rctx, c.v.cred, actionID, api.ActionResult{Status: status, Output: output}, c.rc)
	var ve *ledger.ValidationError
	if errors.As(err, &ve) {
		// Too large a result for the ledger: the agent does not get it,
		// and the evidence says so, with the digest of what was withheld.
		return nil, c.withhold(rctx, actionID, output, ve)
	}
	if err != nil {
		c.g.log.ErrorContext(ctx, "recording an MCP result failed; the result is withheld", "server", c.server, "action_id", actionID, "err", err)
		return nil, &jsonrpc.Error{Code: CodeNotRecorded, Message: "writ could not record the result of action " + actionID + "; it is withheld"}
	}
	if held.Cancelled != "" || status == task.StatusCancelled {
		return nil, cancelledError(c.v.cred.TaskID, actionID, held.Cancelled)
	}
	if callErr != nil {
		return nil, callErr
	}
	return res, nil
}

// cancelledError answers a call cancelled, or whose result is withheld,
// because its task ended or its credential was revoked.
func cancelledError(taskID, actionID, reason string) error {
	why := map[string]string{
		task.ReasonTaskRevoked:       "task " + taskID + " was revoked",
		task.ReasonTaskCompleted:     "task " + taskID + " was completed",
		task.ReasonTaskExpired:       "task " + taskID + " expired",
		task.ReasonCredentialRevoked: "the credential of the call was revoked",
	}[reason]
	if why == "" {
		why = "task " + taskID + " ended"
	}
	return &jsonrpc.Error{Code: CodeDenied, Message: fmt.Sprintf("writ cancelled action %s: %s while it was in flight; its result is withheld", actionID, why)}
}

// withhold records, as the outcome of an action whose result the ledger
// refused (larger than ledger.max_body_bytes), an error naming the reason
// and the withheld result's size, and answers the agent with the same
// reason. No plain digest of the result is recorded: it would let anyone
// holding the record confirm a guess of what was withheld.
func (c *call) withhold(ctx context.Context, actionID string, output []byte, ve *ledger.ValidationError) error {
	msg := fmt.Sprintf("the result of action %s is too large to record (%s; see ledger.max_body_bytes); writ withholds it", actionID, ve.Reason)
	rec, _ := json.Marshal(map[string]any{"error": map[string]any{"code": CodeNotRecorded, "message": msg},
		"withheld": map[string]any{"bytes": len(output)}})
	held, err := c.g.cfg.Decider.RecordHeldResult(ctx, c.v.cred, actionID, api.ActionResult{Status: "error", Output: rec}, c.rc)
	if err != nil {
		c.g.log.ErrorContext(ctx, "recording a withheld MCP result failed", "server", c.server, "action_id", actionID, "err", err)
		return &jsonrpc.Error{Code: CodeNotRecorded, Message: "writ could not record the result of action " + actionID + "; it is withheld"}
	}
	if held.Cancelled != "" {
		return cancelledError(c.v.cred.TaskID, actionID, held.Cancelled)
	}
	return &jsonrpc.Error{Code: CodeNotRecorded, Message: msg}
}

// decisionError answers an error of the task service: a refused credential
// or bad input as such, anything else as "not recorded" (fail closed).
func (c *call) decisionError(err error) error {
	if e, ok := refusal.As(err); ok {
		code := int64(CodeDenied)
		if e.Kind == refusal.Invalid {
			code = jsonrpc.CodeInvalidParams
		}
		return &jsonrpc.Error{Code: code, Message: e.Code + ": " + e.Detail}
	}
	c.g.log.Error("MCP decision failed; denied", "server", c.server, "err", err)
	return &jsonrpc.Error{Code: CodeNotRecorded, Message: "writ could not decide and record this request; it was not forwarded"}
}

func denialText(tool string, out api.Authorized) string {
	var b strings.Builder
	if out.ApprovalRequired {
		fmt.Fprintf(&b, "writ: %s needs step-up approval %s before it may run", tool, out.ApprovalID)
	} else {
		fmt.Fprintf(&b, "writ denied %s", tool)
	}
	if len(out.Reasons) > 0 {
		b.WriteString(": " + strings.Join(out.Reasons, "; "))
	}
	fmt.Fprintf(&b, " (decision %s)", out.DecisionID)
	return b.String()
}

func denialMeta(out api.Authorized) mcp.Meta {
	m := mcp.Meta{"writ/decision_id": out.DecisionID, "writ/reasons": out.Reasons}
	if out.ApprovalRequired {
		m["writ/approval_id"] = out.ApprovalID
	}
	return m
}

func denialError(tool string, out api.Authorized) error {
	data, _ := json.Marshal(map[string]any{"decision_id": out.DecisionID, "reasons": out.Reasons, "approval_id": out.ApprovalID})
	return &jsonrpc.Error{Code: CodeDenied, Message: denialText(tool, out), Data: data}
}
