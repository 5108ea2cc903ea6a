package cli

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/writhq/writ/client"
	"github.com/writhq/writ/internal/query"
)

func eventsCommand() *command {
	q := map[string]*string{}
	var from, to *string
	var limit *int
	var all *bool
	return apiCommand(&command{name: "events", args: "[--task ID] [--agent ID] [--principal ID] [--tool T] [--resource R] [--type T] [--decision D] [--from TIME] [--to TIME] [-o table|json]",
		summary: "query the ledger's events by task, agent, principal, tool, resource, type, decision and time"}, apiCall[query.Page]{
		token: "auditor or admin",
		flags: func(fs *flag.FlagSet) {
			for _, f := range []struct{ name, param, use string }{
				{"task", "task_id", "events of task `ID`"},
				{"agent", "agent", "events of agent `ID` (SPIFFE ID or oidc:…; '*' wildcards)"},
				{"principal", "principal", "events on behalf of principal `ID` ('*' wildcards)"},
				{"tool", "tool", "calls of `TOOL` ('*' wildcards)"},
				{"resource", "resource", "calls on `RESOURCE` ('*' wildcards)"},
				{"type", "type", "events of `TYPE` such as action.denied"},
				{"decision", "decision", "events with `DECISION`: allow, deny, approve, reject, require_approval, ok, error"},
				{"after", "after", "continue after `CURSOR` (printed at the end of a page)"},
			} {
				q[f.param] = fs.String(f.name, "", f.use)
			}
			from = fs.String("from", "", "events at or after `TIME` (RFC 3339, or a duration ago such as 24h)")
			to = fs.String("to", "", "events at or before `TIME` (RFC 3339, or a duration ago)")
			limit = fs.Int("limit", 100, "events per page (at most 1000)")
			all = fs.Bool("all", false, "follow every page")
		},
		call: func(ctx context.Context, cl *client.Client, _ []string) (query.Page, error) {
			v := url.Values{}
			for k, p := range q {
				if *p != "" {
					v.Set(k, *p)
				}
			}
			if err := setTimes(v, time.Now(), map[string]string{"from": *from, "to": *to}); err != nil {
				return query.Page{}, err
			}
			if *limit < 1 || *limit > query.MaxLimit {
				return query.Page{}, &usageError{msg: fmt.Sprintf("--limit %d: want 1 to %d", *limit, query.MaxLimit), hint: "use --all to follow every page"}
			}
			v.Set("limit", strconv.Itoa(*limit))
			out := query.Page{Events: []query.Event{}}
			for {
				var p query.Page
				if err := cl.Do(ctx, "GET", "/v1/events?"+v.Encode(), nil, &p); err != nil {
					return query.Page{}, err
				}
				out.Events = append(out.Events, p.Events...)
				out.Next = p.Next
				if !*all || out.Next == "" {
					return out, nil
				}
				v.Set("after", out.Next)
			}
		},
		table: printEvents,
	})
}

func printEvents(io IO, p query.Page) error {
	w := newTable(io)
	fmt.Fprintln(w, "INDEX\tTIME (UTC)\tEVENT\tTASK\tWHO\tTOOL / RESOURCE\tDECISION\tPOLICY")
	for _, e := range p.Events {
		who := firstNonEmpty(e.Approver, e.Agent, e.Principal, "-")
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Index, e.Time.UTC().Format("2006-01-02 15:04:05.000"), e.Type,
			firstNonEmpty(e.TaskID, "-"), who, oneLine(strings.TrimSpace(e.Tool+" "+e.Resource), 60), e.Decision, shortVersion(e.PolicyVersion))
	}
	w.Flush()
	fmt.Fprintf(io.Stdout, "\n%d event(s)\n", len(p.Events))
	if p.Next != "" {
		fmt.Fprintf(io.Stdout, "more: --after %s (or --all)\n", p.Next)
	}
	return nil
}

// setTimes parses each named time flag's value, in the order of the names,
// into v.
func setTimes(v url.Values, now time.Time, flags map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(flags)) {
		if flags[name] == "" {
			continue
		}
		t, err := timeFlag(name, flags[name], now)
		if err != nil {
			return err
		}
		v.Set(name, t.Format(time.RFC3339Nano))
	}
	return nil
}

// approvalsOf is the answer of GET /v1/reports/approvals.
type approvalsOf struct {
	Resource  string                 `json:"resource"`
	Approvals []query.ApprovalRecord `json:"approvals"`
}

func whoApprovedCommand() *command {
	var res *string
	return apiCommand(&command{name: "who-approved", args: "--resource R [-o table|json]",
		summary: "who approved access to a resource: step-ups for it, and tasks then authorized to reach it"}, apiCall[approvalsOf]{
		token: "auditor or admin",
		flags: func(fs *flag.FlagSet) {
			res = fs.String("resource", "", "the `RESOURCE` ('*' wildcards), such as erp://invoices/2026-Q3/*")
		},
		call: func(ctx context.Context, cl *client.Client, _ []string) (approvalsOf, error) {
			var out approvalsOf
			if *res == "" {
				return out, &usageError{msg: "--resource is required", hint: "writ who-approved --resource 'erp://invoices/*'"}
			}
			err := cl.Do(ctx, "GET", "/v1/reports/approvals?"+url.Values{"resource": {*res}}.Encode(), nil, &out)
			return out, err
		},
		table: func(io IO, out approvalsOf) error {
			if len(out.Approvals) == 0 {
				fmt.Fprintf(io.Stdout, "no approval decided access to %s\n", *res)
				return nil
			}
			w := newTable(io)
			fmt.Fprintln(w, "TIME (UTC)\tINDEX\tTASK\tAPPROVAL\tAPPROVER\tDECISION\tVIA\tPOLICY")
			for _, a := range out.Approvals {
				via := a.Via
				if a.Via == "step_up" {
					via = "step-up " + strings.TrimSpace(a.Tool+" "+a.Resource)
				}
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Time.UTC().Format("2006-01-02 15:04:05"), a.Index, a.TaskID,
					a.ApprovalID, a.Approver, a.Decision, via, shortVersion(a.PolicyVersion))
			}
			return w.Flush()
		},
	})
}

func accessCommand() *command {
	var at, agent *string
	return apiCommand(&command{name: "access", args: "--at TIME [--agent ID] [-o table|json]",
		summary: "which tasks, scopes and credentials were active at an instant"}, apiCall[query.Access]{
		token: "auditor or admin",
		flags: func(fs *flag.FlagSet) {
			at = fs.String("at", "", "the instant: RFC 3339, or a duration ago such as 2h")
			agent = fs.String("agent", "", "only this agent `ID`")
		},
		call: func(ctx context.Context, cl *client.Client, _ []string) (query.Access, error) {
			var out query.Access
			if *at == "" {
				return out, &usageError{msg: "--at is required", hint: "writ access --at 2026-11-25T09:00:00Z"}
			}
			v := url.Values{}
			if err := setTimes(v, time.Now(), map[string]string{"at": *at}); err != nil {
				return out, err
			}
			if *agent != "" {
				v.Set("agent", *agent)
			}
			err := cl.Do(ctx, "GET", "/v1/reports/active?"+v.Encode(), nil, &out)
			return out, err
		},
		table: printAccess,
	})
}

func printAccess(io IO, out query.Access) error {
	fmt.Fprintf(io.Stdout, "active at %s\n\ntasks:\n", out.At.Format(time.RFC3339))
	w := newTable(io)
	fmt.Fprintln(w, "  TASK\tAGENT\tPRINCIPAL\tSCOPE\tACTIVE SINCE\tEXPIRES")
	for _, t := range out.Tasks {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\n", t.TaskID, t.Agent, t.Principal, oneLine(string(t.Scope), 70),
			t.ActivatedAt.Format("2006-01-02 15:04:05"), t.ExpiresAt.Format("2006-01-02 15:04:05"))
	}
	w.Flush()
	fmt.Fprint(io.Stdout, "\ncredentials:\n")
	w = newTable(io)
	fmt.Fprintln(w, "  JTI\tTASK\tAGENT\tISSUED\tEXPIRES")
	for _, c := range out.Credentials {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", c.JTI, c.TaskID, c.Agent, c.IssuedAt.Format("2006-01-02 15:04:05"), c.ExpiresAt.Format("2006-01-02 15:04:05"))
	}
	return w.Flush()
}
