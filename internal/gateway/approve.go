package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/enforce"
	"github.com/writhq/writ/internal/task"
)

// When a tools/call needs a step-up, the gateway can involve a human where
// the agent runs, by the protocol's own means, instead of failing the
// call: URL-mode elicitation, pointing the agent's user to the console's
// page for exactly that approval. A 2025-11-25 session whose client
// declares elicitation.url is sent elicitation/create during the call; a
// 2026-07-28 client that declares it gets an input-required result naming
// the elicitation, and retries with its answer (multi round-trip
// requests). Either way, once the user has accepted to open the page, the
// call is held until the approval is granted (then decided again, which
// spends the approval, and forwarded), denied or expired (then failed with
// the decision ID). A client that supports neither, declines, or
// cancels gets the step-up error it always did.

// approvalInputID names writ's input request in a multi round-trip.
const approvalInputID = "writ/approval"

// askApprover involves a human in the step-up out asked for areq, when
// the client can be asked. It returns the call decided again once the
// approval was granted; or a result to answer instead (an input-required
// result, or the failure of a denied or expired approval); or out itself
// when the client cannot be asked, to be answered as before.
func (c *call) askApprover(ctx context.Context, p *mcp.CallToolParamsRaw, areq api.Authorize, out api.Authorized) (api.Authorized, mcp.Result, error) {
	waiter, ok := c.g.cfg.Decider.(enforce.ApprovalWaiter)
	if !ok || c.g.cfg.ApprovalURL == nil || !urlElicitation(c.req) {
		return out, nil, nil
	}
	asked := out.ApprovalID
	if multiRoundTrip(c.req) {
		resp, answered := p.InputResponses[approvalInputID]
		if !answered {
			link := c.g.cfg.ApprovalURL(asked)
			if link == "" {
				return out, nil, nil
			}
			return out, inputRequired(c.elicitation(areq.Tool, out, link), asked), nil
		}
		if r, ok := resp.(*mcp.ElicitResult); !ok || r.Action != "accept" {
			return out, nil, nil
		}
		// The state names the approval the user was sent to; the waiter
		// holds it to the credential's own task, so a forged one names
		// nothing else.
		if p.RequestState != "" {
			asked = p.RequestState
		}
	} else {
		ss, ok := c.req.GetSession().(*mcp.ServerSession)
		link := c.g.cfg.ApprovalURL(asked)
		if !ok || link == "" {
			return out, nil, nil
		}
		res, err := ss.Elicit(ctx, c.elicitation(areq.Tool, out, link))
		if err != nil || res.Action != "accept" {
			return out, nil, nil
		}
		// The out-of-band interaction is over once the approval is
		// decided or lapses, whichever way.
		defer ss.NotifyElicitationComplete(context.WithoutCancel(ctx), &mcp.ElicitationCompleteParams{ElicitationID: asked})
	}
	outcome, err := waiter.AwaitApproval(ctx, c.v.cred, asked)
	if err != nil {
		return out, nil, c.decisionError(err)
	}
	if outcome != task.AwaitGranted {
		return out, approvalFailed(areq.Tool, out, asked, outcome), nil
	}
	again, err := c.g.cfg.Decider.Authorize(ctx, c.v.cred, areq, c.rc)
	if err != nil {
		return out, nil, c.decisionError(err)
	}
	return again, nil, nil
}

// elicitation asks the agent's user to open link, the console's page for
// the step-up out asked for.
func (c *call) elicitation(tool string, out api.Authorized, link string) *mcp.ElicitParams {
	msg := fmt.Sprintf("writ: %s needs step-up approval %s", tool, out.ApprovalID)
	if len(out.Reasons) > 0 {
		msg += " (" + strings.Join(out.Reasons, "; ") + ")"
	}
	msg += ". Open the link to have an approver decide it; the call runs once it is approved."
	return &mcp.ElicitParams{Mode: "url", Message: msg, URL: link, ElicitationID: out.ApprovalID}
}

// urlElicitation reports whether the client of req declares URL-mode
// elicitation (per request from 2026-07-28, per session before).
func urlElicitation(req mcp.Request) bool {
	r, ok := req.(interface {
		ClientCapabilities() *mcp.ClientCapabilities
	})
	if !ok {
		return false
	}
	caps := r.ClientCapabilities()
	return caps != nil && caps.Elicitation != nil && caps.Elicitation.URL != nil
}

// multiRoundTrip reports whether req speaks 2026-07-28 or later, where a
// server asks for input in its result rather than by a request of its own.
func multiRoundTrip(req mcp.Request) bool {
	if p, ok := req.GetParams().(interface{ GetMeta() map[string]any }); ok && !isNil(p) {
		if v, _ := p.GetMeta()[mcp.MetaKeyProtocolVersion].(string); v != "" {
			return v >= "2026-07-28"
		}
	}
	if ss, ok := req.GetSession().(*mcp.ServerSession); ok {
		if ip := ss.InitializeParams(); ip != nil {
			return ip.ProtocolVersion >= "2026-07-28"
		}
	}
	return false
}

// inputRequiredResult is a tools/call result asking for input (multi
// round-trip requests): the SDK marks results input-required only for the
// tools it serves itself, and writ's gateway answers tools/call before
// them, so it writes the result type itself.
type inputRequiredResult struct{ *mcp.CallToolResult }

func (r inputRequiredResult) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(r.CallToolResult)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["resultType"] = json.RawMessage(`"input_required"`)
	return json.Marshal(m)
}

// inputRequired asks for the elicitation e, with the approval asked as
// the state the client echoes.
func inputRequired(e *mcp.ElicitParams, approvalID string) mcp.Result {
	return inputRequiredResult{&mcp.CallToolResult{
		InputRequests: mcp.InputRequestMap{approvalInputID: e},
		RequestState:  approvalID,
	}}
}

// approvalFailed answers a call whose step-up approvalID was denied or
// expired while the call waited.
func approvalFailed(tool string, out api.Authorized, approvalID, outcome string) *mcp.CallToolResult {
	meta := denialMeta(out)
	meta["writ/approval_id"], meta["writ/approval"] = approvalID, outcome
	return &mcp.CallToolResult{
		IsError: true,
		Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("writ: step-up approval %s for %s was %s; the call did not run (decision %s)",
			approvalID, tool, outcome, out.DecisionID)}},
		Meta: meta,
	}
}
