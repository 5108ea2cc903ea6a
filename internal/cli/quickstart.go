package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/client"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/server"
	"github.com/writhq/writ/internal/task"
)

// The quickstart's cast: two dev humans and one agent.
const (
	qsAgent = "spiffe://" + identity.DevTrustDomain + "/agent/summarizer"
)

func quickstartCommand() *command {
	c := &command{name: "quickstart", args: "[--data-dir DIR] [--listen ADDR] [--exit]",
		summary: "start a local dev server and walk through a whole task: approval, token, allowed, denied and step-up calls, revocation, trace, verification"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		dir := fs.String("data-dir", "", "data `directory` (default: a fresh temporary one)")
		listen := fs.String("listen", "127.0.0.1:7780", "listen `address`; 127.0.0.1:0 picks a free port")
		exit := fs.Bool("exit", false, "stop after the walkthrough instead of leaving the server running")
		if _, err := parseArgs(c, fs, args, 0, 0); err != nil {
			return err
		}
		if *dir == "" {
			d, err := os.MkdirTemp("", "writ-quickstart-")
			if err != nil {
				return err
			}
			*dir = d
		}
		if _, err := identity.EnsureDevIssuer(*dir); err != nil {
			return err
		}
		cfg := config.Default()
		cfg.DataDir, cfg.Listen, cfg.Environment, cfg.Dev = *dir, *listen, "prod", true
		cfg.Log = config.LogConfig{Level: "error", Format: "text"}
		srv, err := server.New(ctx, cfg, newLogger(cfg, io))
		if err != nil {
			var le *datadir.LockedError
			var se *server.StartupError
			switch {
			case errors.As(err, &le):
				return withHint(err, "another writ uses %s; pass a different --data-dir", *dir)
			case errors.As(err, &se):
				return withHint(err, "the quickstart runs a dev server: pass --listen 127.0.0.1:PORT")
			}
			return withHint(err, "if the address is taken, pass --listen 127.0.0.1:0")
		}
		serveCtx, stop := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(serveCtx) }()
		defer func() { stop(); <-errc }()

		url := "http://" + srv.Addr()
		fmt.Fprintf(io.Stdout, "writ quickstart: a dev server at %s, environment prod, data in %s\n", url, *dir)
		fmt.Fprintf(io.Stdout, "(%s)\n\n", identity.DevWarning)
		q, err := newQuickstart(io, url, *dir)
		if err != nil {
			return err
		}
		taskID, err := q.walk(ctx)
		if err != nil {
			return withHint(fmt.Errorf("quickstart stopped: %w", err), "the data directory %s keeps what was recorded; 'writ ledger verify --data-dir %s' checks it", *dir, *dir)
		}
		if err := q.verify(ctx); err != nil {
			return err
		}
		if *exit {
			fmt.Fprintln(io.Stdout, "\nquickstart complete.")
			return nil
		}
		printExplore(io, url, *dir, taskID)
		select {
		case <-ctx.Done():
		case err := <-errc:
			errc <- nil // for the deferred drain
			return err
		}
		return nil
	}
	return c
}

// quickstart holds the walkthrough's clients: one per person and the agent.
type quickstart struct {
	io    IO
	dir   string
	alice *client.Client // requester
	bob   *client.Client // approver
	agent *client.Client // anonymous until it holds a task token
	step  int
}

func newQuickstart(io IO, url, dir string) (*quickstart, error) {
	now := time.Now()
	alice, err := identity.DevToken(dir, "alice", []identity.Role{identity.RoleRequester}, time.Hour, now)
	if err != nil {
		return nil, err
	}
	bob, err := identity.DevToken(dir, "bob", []identity.Role{identity.RoleApprover}, time.Hour, now)
	if err != nil {
		return nil, err
	}
	base := client.New(url, "")
	return &quickstart{io: io, dir: dir, alice: base.WithToken(alice), bob: base.WithToken(bob), agent: base}, nil
}

// say starts a numbered step; ok and note print its outcome.
func (q *quickstart) say(format string, a ...any) {
	q.step++
	fmt.Fprintf(q.io.Stdout, "\n[%d] %s\n", q.step, fmt.Sprintf(format, a...))
}
func (q *quickstart) ok(format string, a ...any) {
	fmt.Fprintf(q.io.Stdout, "    ✓ %s\n", fmt.Sprintf(format, a...))
}
func (q *quickstart) note(format string, a ...any) {
	fmt.Fprintf(q.io.Stdout, "      %s\n", fmt.Sprintf(format, a...))
}

// walk runs the scenario and returns the ID of the approved task. Every step
// checks its outcome; an unexpected answer stops the walk with an error.
func (q *quickstart) walk(ctx context.Context) (string, error) {
	q.say("alice (requester) opens a low-risk task: internal data, one read-only tool")
	low, err := q.alice.OpenTask(ctx, api.OpenTask{Agent: qsAgent, Intent: "Look up the expense policy in the public knowledge base", TTL: "10m",
		Scope: api.Scope{Tools: []string{"kb.search"}, Resources: []string{"kb://public/*"}, Operations: []string{"read"},
			DataClass: "internal", Environments: []string{"prod"}}})
	if err != nil {
		return "", err
	}
	if low.State != api.StateActive {
		return "", fmt.Errorf("low-risk task is %s, want active", low.State)
	}
	q.ok("task %s is active at once: policy %s allowed it", low.TaskID, shortVersion(low.PolicyVersion))

	q.say("alice opens a task that touches confidential data in prod")
	scope := api.Scope{Tools: []string{"invoices.*", "mail.send"}, Resources: []string{"erp://invoices/2026-Q3/*", "mail://finance"},
		Operations: []string{"read", "send"}, DataClass: "confidential", Environments: []string{"prod"}}
	t, err := q.alice.OpenTask(ctx, api.OpenTask{Agent: qsAgent, Intent: "Summarize Q3 invoices and mail the summary to finance", TTL: "15m", Scope: scope})
	if err != nil {
		return "", err
	}
	if t.State != api.StatePendingApproval {
		return "", fmt.Errorf("confidential task is %s, want pending_approval", t.State)
	}
	q.ok("task %s is pending approval: %v", t.TaskID, t.Reasons)
	q.note("scope hash %s; the approval will be bound to it and to policy %s", t.ScopeHash, shortVersion(t.PolicyVersion))

	q.say("bob (approver) approves it")
	d, err := q.bob.Decide(ctx, t.TaskID, api.Decide{Decision: "approve", Reason: "quarter close"})
	if err != nil {
		return "", err
	}
	if d.State != api.StateActive {
		return "", fmt.Errorf("approved task is %s, want active", d.State)
	}
	q.ok("approval %s recorded; task %s is active", d.ApprovalID, t.TaskID)

	q.say("the agent %s exchanges its JWT-SVID for a task token (RFC 8693)", qsAgent)
	svid, err := identity.DevSVID(q.dir, qsAgent, []string{"writ"}, 5*time.Minute, time.Now())
	if err != nil {
		return "", err
	}
	tok, err := q.agent.ExchangeToken(ctx, svid, t.TaskID)
	if err != nil {
		return "", err
	}
	agent := q.agent.WithToken(tok.AccessToken)
	q.ok("token issued for %s, valid %ds (policy caps task tokens at 5m in prod)", tok.Scope, tok.ExpiresIn)

	q.say("the agent reads an invoice: in scope")
	read := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17",
		Arguments: json.RawMessage(`{"id":17}`), DataClass: "confidential"}
	a, err := agent.Authorize(ctx, read)
	if err != nil {
		return "", err
	}
	if !a.Allow {
		return "", fmt.Errorf("in-scope call not allowed: %v", a.Reasons)
	}
	q.ok("allowed: action %s, decision %s (recorded before the answer)", a.ActionID, a.DecisionID)
	if _, err := agent.RecordResult(ctx, a.ActionID, api.ActionResult{Status: "ok", Output: json.RawMessage(`{"invoice":17,"total":1250.00}`)}); err != nil {
		return "", err
	}
	q.ok("result of %s recorded", a.ActionID)

	q.say("the agent tries a payment: outside the task's tools")
	a, err = agent.Authorize(ctx, api.Authorize{Tool: "payments.send", Operation: "send", Resource: "bank://acme/payouts", DataClass: "confidential"})
	if err != nil {
		return "", err
	}
	if a.Allow || a.ApprovalRequired {
		return "", fmt.Errorf("out-of-scope call: allow %v, approval required %v; want a denial", a.Allow, a.ApprovalRequired)
	}
	q.ok("denied: %v (decision %s, recorded)", a.Reasons, a.DecisionID)

	q.say("the agent reads a Q2 invoice: tool in scope, resource not, so policy asks for a step-up")
	stepUp := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q2/9",
		Arguments: json.RawMessage(`{"id":9}`), DataClass: "confidential"}
	a, err = agent.Authorize(ctx, stepUp)
	if err != nil {
		return "", err
	}
	if !a.ApprovalRequired || a.ApprovalID == "" {
		return "", fmt.Errorf("out-of-scope resource: allow %v, reasons %v; want approval_required", a.Allow, a.Reasons)
	}
	q.ok("approval required: %s", a.ApprovalID)
	if _, err := q.bob.DecideApproval(ctx, a.ApprovalID, api.Decide{Decision: "approve", Reason: "needed for the comparison"}); err != nil {
		return "", err
	}
	q.ok("bob approves step-up %s for exactly this call", a.ApprovalID)
	a, err = agent.Authorize(ctx, stepUp)
	if err != nil {
		return "", err
	}
	if !a.Allow {
		return "", fmt.Errorf("retried call after step-up approval not allowed: %v", a.Reasons)
	}
	q.ok("the retried call is allowed once: action %s", a.ActionID)

	q.say("the agent records the step-up action's result")
	rec, err := agent.RecordResult(ctx, a.ActionID, api.ActionResult{Status: "ok", Output: json.RawMessage(`{"invoice":9,"total":980.00}`)})
	if err != nil {
		return "", err
	}
	q.ok("result of %s recorded at ledger index %d", rec.ActionID, rec.LedgerIndex)

	q.say("alice completes the task")
	done, err := q.alice.Complete(ctx, t.TaskID)
	if err != nil {
		return "", err
	}
	if done.State != api.StateCompleted {
		return "", fmt.Errorf("task is %s after completion", done.State)
	}
	q.ok("task %s completed; every credential of it is revoked", t.TaskID)

	// Let the ledger's checkpoint interval pass, so that the batch of the
	// last event carries a checkpoint covering the whole walk.
	time.Sleep(20 * time.Millisecond)
	q.say("the agent tries its token again")
	_, err = agent.Authorize(ctx, read)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 401 {
		return "", fmt.Errorf("revoked token: got %v, want a 401 refusal", err)
	}
	q.ok("refused: %s (recorded as auth.rejected)", ce.Body.Detail)

	q.say("alice reconstructs the task from the ledger (writ trace %s)", t.TaskID)
	tr, err := q.alice.Trace(ctx, t.TaskID)
	if err != nil {
		return "", err
	}
	fmt.Fprintln(q.io.Stdout)
	if err := printTrace(q.io, tr); err != nil {
		return "", err
	}
	return t.TaskID, nil
}

// verify runs what 'writ ledger verify' runs, reading the store the server
// writes (reads take no lock).
func (q *quickstart) verify(ctx context.Context) error {
	q.say("writ ledger verify --data-dir %s", q.dir)
	d, err := datadir.Open(ctx, q.dir, datadir.Options{})
	if err != nil {
		return err
	}
	defer d.Close()
	v, err := ledger.NewVerifier(d.VerifierKey)
	if err != nil {
		return err
	}
	rep, err := ledger.Verify(ctx, d.Store, v, d.VerifierKey)
	if err != nil {
		return fmt.Errorf("reading the ledger: %w", err)
	}
	chk, err := task.CheckLedger(ctx, d.Store, d.Store.DB())
	if err != nil {
		chk.Projections = []string{"cannot replay the ledger and check the projection tables: " + err.Error()}
	}
	fmt.Fprintln(q.io.Stdout)
	printVerifyTable(q.io, rep, chk)
	printVerifyProblems(q.io, rep, chk)
	if n := len(rep.Failures) + rep.Truncated + len(chk.Projections) + chk.SkippedCount; n > 0 {
		return fmt.Errorf("ledger verification failed: %d problem(s)", n)
	}
	fmt.Fprintf(q.io.Stdout, "\nledger verified: %d events\n", rep.Size)
	return nil
}

// printExplore tells the user how to look around while the server runs.
func printExplore(io IO, url, dir, taskID string) {
	fmt.Fprintf(io.Stdout, `
writ keeps running at %[1]s. Explore from another terminal
('writ' is 'go run ./cmd/writ' in a checkout):

  export WRIT_URL=%[1]s
  export WRIT_TOKEN=$(writ dev token --human alice --role requester --data-dir %[2]s)
  writ task list
  writ task get %[3]s
  writ trace %[3]s
  writ task open --agent %[4]s --intent 'Mail the Q3 summary' \
      --tools mail.send --resources mail://finance --operations send --data-class confidential --environments prod
  WRIT_TOKEN=$(writ dev token --human bob --role approver --data-dir %[2]s) writ approvals
  writ exec --agent %[4]s --dev-data-dir %[2]s --intent 'Search the knowledge base' \
      --tools kb.search --resources 'kb://public/*' --operations read --data-class internal --environments prod \
      -- writ authorize --tool kb.search --operation read --resource kb://public/faq
  writ ledger verify --data-dir %[2]s

Press Ctrl-C to stop the server.
`, url, dir, taskID, qsAgent)
}
