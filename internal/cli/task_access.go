package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/client"
)

// approvalPrefix starts every approval request ID; other IDs name tasks.
const approvalPrefix = "apr_"

func approveCommand() *command { return decideCommand("approve", "approve") }
func denyCommand() *command    { return decideCommand("deny", "deny") }

// decideCommand approves or denies a task (by task ID) or one approval
// request, such as a step-up (by its apr_ ID).
func decideCommand(name, decision string) *command {
	args := "<task-id | approval-id> [--reason TEXT]"
	if decision == "deny" {
		args = "<task-id | approval-id> --reason TEXT"
	}
	c := &command{name: name, args: args,
		summary: decision + " a task or a step-up approval request (approver token; not the task's requester)"}
	c.run = func(ctx context.Context, io IO, argv []string) error {
		fs := newFlags(c, io)
		af := addAPIFlags(fs, "approver")
		reason := fs.String("reason", "", "why, for the record")
		pos, err := parseArgs(c, fs, argv, 1, 1)
		if err != nil {
			return err
		}
		if decision == "deny" && *reason == "" {
			return &usageError{msg: "missing --reason", hint: "say why; the reason is recorded in the ledger and shown to the requester"}
		}
		cl, err := af.client(io, true)
		if err != nil {
			return err
		}
		d := api.Decide{Decision: decision, Reason: *reason}
		var out api.Decided
		if strings.HasPrefix(pos[0], approvalPrefix) {
			out, err = cl.DecideApproval(ctx, pos[0], d)
		} else {
			out, err = cl.Decide(ctx, pos[0], d)
		}
		if err != nil {
			return apiError(err, cl.BaseURL())
		}
		if af.out == "json" {
			return printJSON(io, out)
		}
		past := map[string]string{"approve": "approved", "deny": "denied"}[decision]
		fmt.Fprintf(io.Stdout, "%s %s (approval %s); task %s is %s\n", past, pos[0], out.ApprovalID, out.TaskID, out.State)
		return nil
	}
	return c
}

func approvalsCommand() *command {
	return apiCommand(&command{name: "approvals", args: "[-o table|json]", summary: "list the approval requests you can still decide (approver token)"}, apiCall[api.PendingApprovals]{
		token: "approver",
		call: func(ctx context.Context, cl *client.Client, _ []string) (api.PendingApprovals, error) {
			list, err := cl.PendingApprovals(ctx)
			return api.PendingApprovals{Approvals: list}, err
		},
		table: printApprovals,
	})
}

func printApprovals(io IO, p api.PendingApprovals) error {
	w := newTable(io)
	fmt.Fprintln(w, "APPROVAL\tKIND\tTASK\tREQUESTER\tAGENT\tGIVEN\tEXPIRES\tWHAT")
	for _, a := range p.Approvals {
		what := oneLine(a.Intent, 50)
		if a.Kind == "step_up" {
			what = fmt.Sprintf("%s %s %s", a.Tool, a.Operation, a.Resource)
		}
		if a.Scope.Limits != nil {
			what += " [limits " + a.Scope.Limits.String() + "]"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", a.ApprovalID, a.Kind, a.TaskID, a.Requester, a.Agent,
			a.ApprovalsGiven, a.ApprovalsRequired, fmtTime(a.ExpiresAt), what)
	}
	return w.Flush()
}

func tokenCommand() *command {
	c := &command{name: "token", args: "<task-id> (--svid FILE | --svid-token JWT) [-o table|json]",
		summary: "exchange the agent's JWT-SVID for the task's access token (RFC 8693) and print it"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		af := addAPIFlags(fs, "")
		svidFile := fs.String("svid", "", "read the agent's JWT-SVID (or OIDC token) from `file`")
		svidTok := fs.String("svid-token", "", "the agent's JWT-SVID (or OIDC token) itself")
		pos, err := parseArgs(c, fs, args, 1, 1)
		if err != nil {
			return err
		}
		svid, err := readSVID(*svidFile, *svidTok)
		if err != nil {
			return err
		}
		cl, err := af.client(io, false)
		if err != nil {
			return err
		}
		out, err := cl.ExchangeToken(ctx, svid, pos[0])
		if err != nil {
			return exchangeError(err, cl.BaseURL(), pos[0])
		}
		if af.out == "json" {
			return printJSON(io, out)
		}
		fmt.Fprintln(io.Stdout, out.AccessToken)
		return nil
	}
	return c
}

// readSVID returns the agent's identity token from exactly one of a file
// and a literal value.
func readSVID(file, tok string) (string, error) {
	switch {
	case file != "" && tok != "":
		return "", &usageError{msg: "--svid and --svid-token both given", hint: "pass one"}
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		tok = string(b)
	case tok == "":
		return "", &usageError{msg: "missing --svid or --svid-token",
			hint: "with a dev server: writ dev svid --agent spiffe://writ.dev/agent/NAME --data-dir DIR > svid.jwt"}
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", errors.New("the agent token is empty")
	}
	return tok, nil
}

// exchangeError adds a hint to a refused token exchange.
func exchangeError(err error, serverURL, taskID string) error {
	var ce *client.Error
	switch {
	case errors.As(err, &ce) && ce.Body.Error == "invalid_grant":
		return withHint(err, "a token is issued only to the agent named on task %s, while it is active (see 'writ task get %s')", taskID, taskID)
	case errors.As(err, &ce) && ce.Status == 404:
		return withHint(err, "this server does not offer token exchange at /oauth2/token")
	}
	return apiError(err, serverURL)
}

func authorizeCommand() *command {
	c := &command{name: "authorize", args: "--tool T --operation O --resource R [--args JSON] [--data-class C] [-o table|json]",
		summary: "ask whether the task's agent may make one call (task token); exit 1 unless allowed"}
	c.run = func(ctx context.Context, io IO, argv []string) error {
		fs := newFlags(c, io)
		af := addAPIFlags(fs, "task access")
		var req api.Authorize
		fs.StringVar(&req.Tool, "tool", "", "the `tool` to call (invoices.read)")
		fs.StringVar(&req.Operation, "operation", "", "the `operation` (read, send, delete…)")
		fs.StringVar(&req.Resource, "resource", "", "the `resource` acted on (erp://invoices/2026-Q3/17)")
		args := fs.String("args", "", "the call's arguments as a JSON `object`")
		fs.StringVar(&req.DataClass, "data-class", "", "the data `class` the call touches")
		if _, err := parseArgs(c, fs, argv, 0, 0); err != nil {
			return err
		}
		if req.Tool == "" || req.Operation == "" || req.Resource == "" {
			return &usageError{msg: "missing --tool, --operation or --resource", hint: "usage: " + c.path() + " " + c.args}
		}
		if *args != "" {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal([]byte(*args), &obj); err != nil || obj == nil {
				return &usageError{msg: "--args: not a JSON object", hint: `pass an object such as '{"id": 17}'`}
			}
			req.Arguments = json.RawMessage(*args)
		}
		cl, err := af.client(io, true)
		if err != nil {
			return err
		}
		out, err := cl.Authorize(ctx, req)
		if err != nil {
			return apiError(err, cl.BaseURL())
		}
		if af.out == "json" {
			if err := printJSON(io, out); err != nil {
				return err
			}
		} else {
			printAuthorized(io, out)
		}
		switch {
		case out.Allow:
			return nil
		case out.ApprovalRequired:
			return withHint(errors.New("approval required"),
				"an approver runs 'writ approve %s'; then retry the same call once", out.ApprovalID)
		}
		return errors.New("denied")
	}
	return c
}

func printAuthorized(io IO, a api.Authorized) {
	w := newTable(io)
	switch {
	case a.Allow:
		fmt.Fprintf(w, "allow\ttrue\n")
		fmt.Fprintf(w, "action\t%s\n", a.ActionID)
	case a.ApprovalRequired:
		fmt.Fprintf(w, "allow\tfalse (approval required)\n")
		fmt.Fprintf(w, "approval\t%s\n", a.ApprovalID)
	default:
		fmt.Fprintf(w, "allow\tfalse\n")
	}
	fmt.Fprintf(w, "decision\t%s\n", a.DecisionID)
	for _, r := range a.Reasons {
		fmt.Fprintf(w, "reason\t%s\n", r)
	}
	if len(a.Redact) > 0 {
		fmt.Fprintf(w, "redact\t%s (stored redacted)\n", strings.Join(a.Redact, ", "))
	}
	w.Flush()
}
