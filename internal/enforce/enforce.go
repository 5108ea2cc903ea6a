// Package enforce holds what the enforcement points in an agent's path
// share: the task service they decide and record through (Decider), how
// they verify a request's task token (Authenticator), and the trace ID a
// request carries (TraceID). The MCP gateway (package gateway) and the
// HTTP proxy (package proxy) take a Decider and an Authenticator from the
// server; a new enforcement point takes the same two, names itself with a
// policy.Gateway* constant in task.Request, and so decides and records
// exactly as the others do.
package enforce

import (
	"context"
	"net/http"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/task"
)

// Decider authorizes and records calls; *task.Service is one. Each method
// records durably before it answers and returns an error when it cannot;
// a refusal is a *refusal.Error.
type Decider interface {
	// Authorize decides one call and records the decision.
	Authorize(ctx context.Context, cred task.VerifiedCredential, req api.Authorize, rc task.Request) (api.Authorized, error)
	// RecordResultAt records the outcome of an authorized call.
	RecordResultAt(ctx context.Context, cred task.VerifiedCredential, actionID string, res api.ActionResult, rc task.Request) (api.ResultRecorded, error)
	// RecordHeldResult records the outcome of a call whose result the
	// enforcement point still holds; when the task ended (or the
	// credential was revoked) before the record, it records the call as
	// cancelled and says so, and the result is withheld.
	RecordHeldResult(ctx context.Context, cred task.VerifiedCredential, actionID string, res api.ActionResult, rc task.Request) (task.HeldResult, error)
	// Visible decides which of a listing's tools the task may see, and
	// records those it may not.
	Visible(ctx context.Context, cred task.VerifiedCredential, server string, tools []task.ListedTool, rc task.Request) ([]bool, error)
}

var _ Decider = (*task.Service)(nil)

// ApprovalWaiter is what a Decider can do besides: wait for a step-up
// approval it asked for to be decided, so that an enforcement point that
// asked an approver where the agent runs can hold the call meanwhile.
type ApprovalWaiter interface {
	// AwaitApproval returns task.AwaitGranted, AwaitDenied or AwaitExpired
	// once the step-up approvalID of cred's task is decided or expires,
	// or an error (ctx's, or a refusal of the credential).
	AwaitApproval(ctx context.Context, cred task.VerifiedCredential, approvalID string) (string, error)
}

var _ ApprovalWaiter = (*task.Service)(nil)

// Authenticator verifies the task token of an HTTP request exactly as the
// decision API does. When it refuses, it has answered w (401 or 403 with a
// WWW-Authenticate challenge) and recorded the refusal.
type Authenticator func(w http.ResponseWriter, r *http.Request) (task.VerifiedCredential, bool)
