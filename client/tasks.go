package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/writhq/writ/api"
)

// RFC 8693 token exchange identifiers.
const (
	GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeJWT       = "urn:ietf:params:oauth:token-type:jwt"
)

// WithToken returns a client for the same server, sharing its connections,
// that authenticates with token instead.
func (c *Client) WithToken(token string) *Client {
	cc := *c
	cc.token = token
	return &cc
}

// BaseURL returns the server's base URL.
func (c *Client) BaseURL() string { return c.base }

// OpenTask asks for a task (requester token). The answer's State says
// whether it is active, pending approval or denied.
func (c *Client) OpenTask(ctx context.Context, req api.OpenTask) (api.TaskOpened, error) {
	var out api.TaskOpened
	err := c.Do(ctx, http.MethodPost, "/v1/tasks", req, &out)
	return out, err
}

// GetTask returns one task.
func (c *Client) GetTask(ctx context.Context, id string) (api.Task, error) {
	var out api.Task
	err := c.Do(ctx, http.MethodGet, "/v1/tasks/"+url.PathEscape(id), nil, &out)
	return out, err
}

// ListTasks returns the tasks in state, or every task when state is empty.
func (c *Client) ListTasks(ctx context.Context, state string) ([]api.Task, error) {
	path := "/v1/tasks"
	if state != "" {
		path += "?state=" + url.QueryEscape(state)
	}
	var out api.TaskList
	err := c.Do(ctx, http.MethodGet, path, nil, &out)
	return out.Tasks, err
}

// Decide approves or denies a task (approver token).
func (c *Client) Decide(ctx context.Context, taskID string, d api.Decide) (api.Decided, error) {
	var out api.Decided
	err := c.Do(ctx, http.MethodPost, "/v1/tasks/"+url.PathEscape(taskID)+"/approvals", d, &out)
	return out, err
}

// DecideApproval approves or denies one approval request by its ID: a
// step-up, or a task's approval (approver token).
func (c *Client) DecideApproval(ctx context.Context, approvalID string, d api.Decide) (api.Decided, error) {
	var out api.Decided
	err := c.Do(ctx, http.MethodPost, "/v1/approvals/"+url.PathEscape(approvalID), d, &out)
	return out, err
}

// PendingApprovals lists the approval requests the caller can still decide.
func (c *Client) PendingApprovals(ctx context.Context) ([]api.PendingApproval, error) {
	var out api.PendingApprovals
	err := c.Do(ctx, http.MethodGet, "/v1/approvals", nil, &out)
	return out.Approvals, err
}

// Complete ends an active task, revoking its credentials, and returns it.
func (c *Client) Complete(ctx context.Context, id string) (api.Task, error) {
	var out api.Task
	err := c.Do(ctx, http.MethodPost, "/v1/tasks/"+url.PathEscape(id)+"/complete", nil, &out)
	return out, err
}

// Revoke ends an active or pending task, revoking its credentials and those
// of its descendants, and returns it.
func (c *Client) Revoke(ctx context.Context, id, reason string) (api.Task, error) {
	var out api.Task
	body := struct {
		Reason string `json:"reason"`
	}{reason}
	err := c.Do(ctx, http.MethodPost, "/v1/tasks/"+url.PathEscape(id)+"/revoke", body, &out)
	return out, err
}

// Hold places a legal hold on a task (auditor or admin) and returns it:
// no body of its events or its descendants' is erased while it holds.
func (c *Client) Hold(ctx context.Context, id, reason string) (api.Task, error) {
	var out api.Task
	err := c.Do(ctx, http.MethodPost, "/v1/tasks/"+url.PathEscape(id)+"/hold", api.HoldRequest{Reason: reason}, &out)
	return out, err
}

// Release lifts a task's legal hold and returns the task.
func (c *Client) Release(ctx context.Context, id, reason string) (api.Task, error) {
	var out api.Task
	err := c.Do(ctx, http.MethodDelete, "/v1/tasks/"+url.PathEscape(id)+"/hold", api.HoldRequest{Reason: reason}, &out)
	return out, err
}

// Trace returns the task's evidence chain, each event with its inclusion
// proven against the latest checkpoint where the server could.
func (c *Client) Trace(ctx context.Context, id string) (api.Trace, error) {
	var out api.Trace
	err := c.Do(ctx, http.MethodGet, "/v1/tasks/"+url.PathEscape(id)+"/trace", nil, &out)
	return out, err
}

// ExchangeToken trades an agent's identity token (a JWT-SVID or OIDC token)
// for an access token bound to the task (RFC 8693). The client's own token
// is not sent. Refusals are *Error with the OAuth error code in Body.Error.
func (c *Client) ExchangeToken(ctx context.Context, subjectToken, taskID string) (api.TokenResponse, error) {
	form := url.Values{
		"grant_type":         {GrantTokenExchange},
		"subject_token":      {subjectToken},
		"subject_token_type": {TokenTypeJWT},
		"scope":              {"task:" + taskID},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return api.TokenResponse{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status, data, err := c.send(req, false)
	if err != nil {
		return api.TokenResponse{}, err
	}
	if status >= 400 {
		// RFC 6749 §5.2: {"error", "error_description"}.
		var oe struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(data, &oe) == nil && oe.Error != "" {
			return api.TokenResponse{}, &Error{Status: status, Body: api.Error{Error: oe.Error, Detail: oe.Description}}
		}
		return api.TokenResponse{}, errorFrom(status, data)
	}
	var out api.TokenResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return out, fmt.Errorf("decoding token exchange answer: %w", err)
	}
	if out.AccessToken == "" {
		return out, errors.New("token exchange answer has no access_token")
	}
	return out, nil
}

// Authorize asks whether the task's agent may make one call (task token).
// A denial, or a call that needs a step-up approval, is a decision and not
// an error: it returns Allow false with a nil error. Errors are refusals to
// decide (a revoked token, a malformed request, an unavailable ledger).
func (c *Client) Authorize(ctx context.Context, a api.Authorize) (api.Authorized, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return api.Authorized{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/authorize", bytes.NewReader(b))
	if err != nil {
		return api.Authorized{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	status, data, err := c.send(req, true)
	if err != nil {
		return api.Authorized{}, err
	}
	var out api.Authorized
	switch status {
	case http.StatusOK:
		if err := json.Unmarshal(data, &out); err != nil {
			return out, fmt.Errorf("decoding authorize answer: %w", err)
		}
		if !out.Allow {
			return api.Authorized{}, errors.New("authorize answered 200 without allow")
		}
		return out, nil
	case http.StatusForbidden:
		// A decision carries decision_id; any other 403 is an error body.
		if json.Unmarshal(data, &out) == nil && out.DecisionID != "" {
			out.Allow = false // fail closed whatever the body says
			return out, nil
		}
	}
	return api.Authorized{}, errorFrom(status, data)
}

// RecordResult records the outcome of an authorized action (task token).
func (c *Client) RecordResult(ctx context.Context, actionID string, r api.ActionResult) (api.ResultRecorded, error) {
	var out api.ResultRecorded
	err := c.Do(ctx, http.MethodPost, "/v1/actions/"+url.PathEscape(actionID)+"/result", r, &out)
	return out, err
}

// send sends req, with the bearer token when auth is set, and reads the
// answer.
func (c *Client) send(req *http.Request, auth bool) (int, []byte, error) {
	if auth && c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, data, nil
}
