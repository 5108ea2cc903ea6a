package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/client"
)

// defaultServerURL is where API commands look for a server when neither
// --server nor WRIT_URL says otherwise.
const defaultServerURL = "http://127.0.0.1:7780"

// apiFlags binds the flags of every command that calls a running server.
type apiFlags struct {
	server string
	token  string
	out    string
}

// addAPIFlags adds --server, -o and, unless tokenUse is empty, --token
// (tokenUse says whose token, for help).
func addAPIFlags(fs *flag.FlagSet, tokenUse string) *apiFlags {
	a := &apiFlags{}
	fs.StringVar(&a.server, "server", "", "server `URL` (or WRIT_URL; default "+defaultServerURL+")")
	if tokenUse != "" {
		fs.StringVar(&a.token, "token", "", tokenUse+" bearer `token` (or WRIT_TOKEN)")
	}
	fs.StringVar(&a.out, "o", "table", "output `format`: table or json")
	return a
}

// url returns the server URL: the flag, WRIT_URL, or the default.
func (a *apiFlags) url(io IO) string {
	switch {
	case a.server != "":
		return a.server
	case io.Getenv("WRIT_URL") != "":
		return io.Getenv("WRIT_URL")
	}
	return defaultServerURL
}

// client checks the output format and returns a client authenticated with
// the token from --token or WRIT_TOKEN, which must be set when needToken.
func (a *apiFlags) client(io IO, needToken bool) (*client.Client, error) {
	if err := checkOutput(a.out); err != nil {
		return nil, err
	}
	tok := a.bearer(io)
	if tok == "" && needToken {
		return nil, withHint(errors.New("no token: pass --token or set WRIT_TOKEN"),
			"with a dev server: export WRIT_TOKEN=$(writ dev token --human alice --role requester --data-dir DIR)")
	}
	return client.New(a.url(io), tok), nil
}

// bearer returns the token from --token or WRIT_TOKEN; "" if neither is set.
func (a *apiFlags) bearer(io IO) string {
	if a.token != "" {
		return a.token
	}
	return strings.TrimSpace(io.Getenv("WRIT_TOKEN"))
}

// parse parses a server command's flags, checks it has between min and max
// positional arguments, and returns them with a client for the server.
func (a *apiFlags) parse(c *command, fs *flag.FlagSet, io IO, args []string, min, max int, needToken bool) ([]string, *client.Client, error) {
	pos, err := parseArgs(c, fs, args, min, max)
	if err != nil {
		return nil, nil, err
	}
	cl, err := a.client(io, needToken)
	return pos, cl, err
}

// apiCall is a command that makes one call to a running server with a
// token and prints the answer: as JSON with -o json, else with table.
type apiCall[T any] struct {
	token string // whose token, for the help of --token
	args  int    // how many positional arguments the command takes
	// flags, when set, adds the command's own flags, on each run, bound to
	// variables that check and call read.
	flags func(fs *flag.FlagSet)
	// check, when set, checks the arguments before any client is made.
	check func(pos []string) error
	// call asks the server; its errors get apiError's hints.
	call  func(ctx context.Context, cl *client.Client, pos []string) (T, error)
	table func(io IO, v T) error
}

// apiCommand makes c run a.
func apiCommand[T any](c *command, a apiCall[T]) *command {
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		af := addAPIFlags(fs, a.token)
		if a.flags != nil {
			a.flags(fs)
		}
		pos, err := parseArgs(c, fs, args, a.args, a.args)
		if err != nil {
			return err
		}
		if a.check != nil {
			if err := a.check(pos); err != nil {
				return err
			}
		}
		cl, err := af.client(io, true)
		if err != nil {
			return err
		}
		v, err := a.call(ctx, cl, pos)
		if err != nil {
			return apiError(err, cl.BaseURL())
		}
		if af.out == "json" {
			return printJSON(io, v)
		}
		return a.table(io, v)
	}
	return c
}

// apiError adds a hint to the errors a user can act on.
func apiError(err error, serverURL string) error {
	var ce *client.Error
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &ce) && ce.Status == 401:
		return withHint(err, "the token is missing, expired, revoked or not trusted by this server; get a fresh one")
	case errors.As(err, &ce) && ce.Status == 403 && (ce.Body.Error == "forbidden" || ce.Body.Error == "insufficient_scope"):
		return withHint(err, "the token lacks the role this needs (requester, approver, auditor or admin)")
	case errors.As(err, &ce) && ce.Status == 404:
		return withHint(err, "check the ID; 'writ task list' shows the tasks")
	case errors.As(err, &oe) && oe.Op == "dial", errors.As(err, &ne) && ne.Timeout():
		return withHint(err, "is a writ server running at %s? start one with 'writ quickstart' or 'writ server', or pass --server", serverURL)
	}
	return err
}

// commaList splits a comma-separated flag value, dropping empty items.
func commaList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// scopeFlags binds the flags that describe a task: agent, intent, scope, TTL.
type scopeFlags struct {
	agent, intent, tools, resources, operations, dataClass, environments string
	ttl, parent, scopeFile                                               string
	fs                                                                   *flag.FlagSet
}

func addScopeFlags(fs *flag.FlagSet) *scopeFlags {
	s := &scopeFlags{fs: fs}
	fs.StringVar(&s.agent, "agent", "", "the agent's `ID` (SPIFFE ID or OIDC subject)")
	fs.StringVar(&s.intent, "intent", "", "what the agent is asked to do, in plain `words`")
	fs.StringVar(&s.tools, "tools", "", "tool `patterns`, comma-separated (invoices.*,mail.send)")
	fs.StringVar(&s.resources, "resources", "", "resource `patterns`, comma-separated (erp://invoices/2026-Q3/*)")
	fs.StringVar(&s.operations, "operations", "", "`operations`, comma-separated (read,send)")
	fs.StringVar(&s.dataClass, "data-class", "", "highest data `class`: public, internal, confidential or restricted")
	fs.StringVar(&s.environments, "environments", "", "environment `patterns`, comma-separated (prod)")
	fs.StringVar(&s.ttl, "ttl", "15m", "task `lifetime` once active (10s to 168h; policy may cap it)")
	fs.StringVar(&s.parent, "parent", "", "parent task `ID` for a delegated task")
	fs.StringVar(&s.scopeFile, "scope-file", "", "read the scope from a JSON `file` ({\"tools\": [...], ...}) instead of the scope flags")
	return s
}

// request builds the body of POST /v1/tasks; it needs --agent unless
// agentDefault is set.
func (s *scopeFlags) request(agentDefault string) (api.OpenTask, error) {
	req := api.OpenTask{Agent: s.agent, Intent: s.intent, TTL: s.ttl}
	if req.Agent == "" {
		req.Agent = agentDefault
	}
	if s.parent != "" {
		p := s.parent
		req.Parent = &p
	}
	var missing []string
	if req.Agent == "" {
		missing = append(missing, "--agent")
	}
	if req.Intent == "" {
		missing = append(missing, "--intent")
	}
	if s.scopeFile != "" {
		for _, f := range []string{"tools", "resources", "operations", "data-class", "environments"} {
			if isFlagSet(s.fs, f) {
				return req, &usageError{msg: "--scope-file and --" + f + " both given", hint: "put the whole scope in the file, or use only the flags"}
			}
		}
		sc, err := readScopeFile(s.scopeFile)
		if err != nil {
			return req, err
		}
		req.Scope = sc
	} else {
		req.Scope = api.Scope{Tools: commaList(s.tools), Resources: commaList(s.resources),
			Operations: commaList(s.operations), DataClass: s.dataClass, Environments: commaList(s.environments)}
		for name, v := range map[string]bool{"--tools": len(req.Scope.Tools) == 0, "--resources": len(req.Scope.Resources) == 0,
			"--operations": len(req.Scope.Operations) == 0, "--data-class": req.Scope.DataClass == "", "--environments": len(req.Scope.Environments) == 0} {
			if v {
				missing = append(missing, name)
			}
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return req, &usageError{msg: "missing " + strings.Join(missing, ", "),
			hint: "a task needs an agent, an intent and a scope: --tools, --resources, --operations, --data-class, --environments (or --scope-file)"}
	}
	if _, err := time.ParseDuration(req.TTL); err != nil {
		return req, &usageError{msg: fmt.Sprintf("--ttl %q: not a duration", req.TTL), hint: "use Go durations such as 15m or 2h"}
	}
	return req, nil
}

// readScopeFile reads a scope object; unknown fields are an error so that a
// misspelt key does not silently widen or narrow the scope.
func readScopeFile(path string) (api.Scope, error) {
	var sc api.Scope
	b, err := os.ReadFile(path)
	if err != nil {
		return sc, err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return sc, withHint(fmt.Errorf("scope file %s: %w", path, err),
			`want {"tools": [...], "resources": [...], "operations": [...], "data_class": "...", "environments": [...]}`)
	}
	if dec.More() {
		return sc, fmt.Errorf("scope file %s: more than one JSON value", path)
	}
	return sc, nil
}

func isFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// fmtTime prints a time for tables: local, to the second; "-" when unset.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func taskCommand() *command {
	return &command{
		name:    "task",
		summary: "open, inspect and end tasks (what a human asks an agent to do)",
		subs: []*command{taskOpenCommand(), taskGetCommand(), taskListCommand(), taskCompleteCommand(), taskRevokeCommand(),
			taskHoldCommand(true), taskHoldCommand(false)},
	}
}

func taskOpenCommand() *command {
	c := &command{name: "open", args: "--agent ID --intent TEXT (--tools … --resources … --operations … --data-class C --environments … | --scope-file FILE) [--ttl 15m] [--parent ID]",
		summary: "ask for a task (requester token); policy makes it active, pending approval or denied"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		af := addAPIFlags(fs, "requester")
		sf := addScopeFlags(fs)
		if _, err := parseArgs(c, fs, args, 0, 0); err != nil {
			return err
		}
		req, err := sf.request("")
		if err != nil {
			return err
		}
		cl, err := af.client(io, true)
		if err != nil {
			return err
		}
		out, err := cl.OpenTask(ctx, req)
		if err != nil {
			return apiError(err, cl.BaseURL())
		}
		if af.out == "json" {
			return printJSON(io, out)
		}
		w := newTable(io)
		fmt.Fprintf(w, "task\t%s\n", out.TaskID)
		fmt.Fprintf(w, "state\t%s\n", out.State)
		fmt.Fprintf(w, "decision\t%s\n", out.DecisionID)
		fmt.Fprintf(w, "policy version\t%s\n", out.PolicyVersion)
		fmt.Fprintf(w, "scope hash\t%s\n", out.ScopeHash)
		if out.ApprovalsRequired > 0 {
			fmt.Fprintf(w, "approvals required\t%d\n", out.ApprovalsRequired)
		}
		for _, r := range out.Reasons {
			fmt.Fprintf(w, "reason\t%s\n", r)
		}
		w.Flush()
		if out.State == api.StatePendingApproval {
			fmt.Fprintf(io.Stderr, "writ: the task waits for approval; an approver runs: writ approve %s\n", out.TaskID)
		}
		return nil
	}
	return c
}

func taskGetCommand() *command {
	return apiCommand(&command{name: "get", args: "<task-id> [-o table|json]", summary: "show one task"}, apiCall[api.Task]{
		token: "any role's", args: 1,
		call: func(ctx context.Context, cl *client.Client, pos []string) (api.Task, error) {
			return cl.GetTask(ctx, pos[0])
		},
		table: printTask,
	})
}

// printTask prints one task as aligned key/value lines.
func printTask(io IO, t api.Task) error {
	w := newTable(io)
	fmt.Fprintf(w, "task\t%s\n", t.TaskID)
	fmt.Fprintf(w, "state\t%s\n", t.State)
	fmt.Fprintf(w, "requester\t%s\n", t.Requester)
	fmt.Fprintf(w, "agent\t%s\n", t.Agent)
	fmt.Fprintf(w, "intent\t%s\n", oneLine(t.Intent, 200))
	fmt.Fprintf(w, "tools\t%s\n", strings.Join(t.Scope.Tools, ", "))
	fmt.Fprintf(w, "resources\t%s\n", strings.Join(t.Scope.Resources, ", "))
	fmt.Fprintf(w, "operations\t%s\n", strings.Join(t.Scope.Operations, ", "))
	fmt.Fprintf(w, "data class\t%s\n", t.Scope.DataClass)
	fmt.Fprintf(w, "environments\t%s\n", strings.Join(t.Scope.Environments, ", "))
	if t.Scope.Limits != nil {
		fmt.Fprintf(w, "limits\t%s\n", t.Scope.Limits)
	}
	fmt.Fprintf(w, "ttl\t%s\n", t.TTL)
	if t.Parent != "" {
		fmt.Fprintf(w, "parent\t%s\n", t.Parent)
	}
	if len(t.Children) > 0 {
		fmt.Fprintf(w, "children\t%s\n", strings.Join(t.Children, ", "))
	}
	fmt.Fprintf(w, "created\t%s\n", fmtTime(t.CreatedAt))
	fmt.Fprintf(w, "expires\t%s\n", fmtTime(t.ExpiresAt))
	if t.EndedAt != nil {
		fmt.Fprintf(w, "ended\t%s\n", fmtTime(*t.EndedAt))
	}
	fmt.Fprintf(w, "decision\t%s\n", t.DecisionID)
	fmt.Fprintf(w, "policy version\t%s\n", t.PolicyVersion)
	fmt.Fprintf(w, "scope hash\t%s\n", t.ScopeHash)
	for _, r := range t.Reasons {
		fmt.Fprintf(w, "reason\t%s\n", r)
	}
	for _, a := range t.Approvals {
		fmt.Fprintf(w, "approval\t%s %s by %s: %s\n", a.ApprovalID, a.Decision, a.Approver, a.Reason)
	}
	if h := t.Hold; h != nil {
		via := ""
		if h.TaskID != t.TaskID {
			via = " (the hold of task " + h.TaskID + ")"
		}
		fmt.Fprintf(w, "legal hold\tsince %s by %s%s: %s [ledger event %d]\n", fmtTime(h.At), h.By, via, oneLine(h.Reason, 200), h.LedgerIndex)
	}
	fmt.Fprintf(w, "ledger index\t%d\n", t.LedgerIndex)
	return w.Flush()
}

// oneLine folds whitespace and cuts s to at most n runes, for table cells.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func taskListCommand() *command {
	var state *string
	return apiCommand(&command{name: "list", args: "[--state S] [-o table|json]", summary: "list tasks, optionally in one state"}, apiCall[api.TaskList]{
		token: "any role's",
		flags: func(fs *flag.FlagSet) {
			state = fs.String("state", "", "only tasks in `state`: pending_approval, active, denied, completed, expired, revoked")
		},
		call: func(ctx context.Context, cl *client.Client, _ []string) (api.TaskList, error) {
			tasks, err := cl.ListTasks(ctx, *state)
			return api.TaskList{Tasks: tasks}, err
		},
		table: printTaskList,
	})
}

func printTaskList(io IO, l api.TaskList) error {
	w := newTable(io)
	fmt.Fprintln(w, "TASK\tSTATE\tREQUESTER\tAGENT\tEXPIRES\tINTENT")
	for _, t := range l.Tasks {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.TaskID, t.State, t.Requester, t.Agent, fmtTime(t.ExpiresAt), oneLine(t.Intent, 50))
	}
	return w.Flush()
}

func taskCompleteCommand() *command {
	return apiCommand(&command{name: "complete", args: "<task-id>", summary: "end an active task and revoke its credentials (its requester or an admin)"}, apiCall[api.Task]{
		token: "requester or admin", args: 1,
		call: func(ctx context.Context, cl *client.Client, pos []string) (api.Task, error) {
			return cl.Complete(ctx, pos[0])
		},
		table: printEnded,
	})
}

func taskRevokeCommand() *command {
	var reason *string
	return apiCommand(&command{name: "revoke", args: "<task-id> --reason TEXT", summary: "end a task now and revoke its credentials and its children's (its requester or an admin)"}, apiCall[api.Task]{
		token: "requester or admin", args: 1,
		flags: func(fs *flag.FlagSet) { reason = fs.String("reason", "", "why, for the record") },
		check: func([]string) error {
			if *reason == "" {
				return &usageError{msg: "missing --reason", hint: "say why the task is revoked; it is recorded in the ledger"}
			}
			return nil
		},
		call: func(ctx context.Context, cl *client.Client, pos []string) (api.Task, error) {
			return cl.Revoke(ctx, pos[0], *reason)
		},
		table: printEnded,
	})
}

// taskHoldCommand is `writ task hold` (hold) or `writ task release`.
func taskHoldCommand(hold bool) *command {
	var reason *string
	c := &command{name: "release", args: "<task-id> --reason TEXT",
		summary: "lift a task's legal hold, so that retention may erase its bodies again (auditor or admin)"}
	if hold {
		c.name, c.summary = "hold", "place a legal hold on a task: no body of its or its children's events is erased while it holds (auditor or admin)"
	}
	return apiCommand(c, apiCall[api.Task]{
		token: "auditor or admin", args: 1,
		flags: func(fs *flag.FlagSet) { reason = fs.String("reason", "", "why, for the record (required)") },
		check: func([]string) error {
			if *reason == "" {
				return &usageError{msg: "missing --reason", hint: "say why, e.g. --reason 'litigation hold, case 2026-14'; it is recorded in the ledger"}
			}
			return nil
		},
		call: func(ctx context.Context, cl *client.Client, pos []string) (api.Task, error) {
			if hold {
				return cl.Hold(ctx, pos[0], *reason)
			}
			return cl.Release(ctx, pos[0], *reason)
		},
		table: func(io IO, t api.Task) error {
			if hold {
				fmt.Fprintf(io.Stdout, "%s is held: no body of its events or its children's is erased until the hold is lifted\n", t.TaskID)
			} else if t.Hold != nil {
				fmt.Fprintf(io.Stdout, "%s's own hold is lifted; it is still under the hold of task %s\n", t.TaskID, t.Hold.TaskID)
			} else {
				fmt.Fprintf(io.Stdout, "%s's hold is lifted\n", t.TaskID)
			}
			return nil
		},
	})
}

func printEnded(io IO, t api.Task) error {
	fmt.Fprintf(io.Stdout, "%s %s; its credentials are revoked\n", t.TaskID, t.State)
	return nil
}
