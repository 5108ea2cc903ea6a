package cli

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/writhq/writ/client"
	"github.com/writhq/writ/internal/evidence"
)

func reportCommand() *command {
	return &command{name: "report", summary: "reports over the ledger",
		subs: []*command{reportAccessCommand(), reportRetentionCommand(), reportComplianceCommand()}}
}

func reportAccessCommand() *command {
	var from, to, agent *string
	var longTTL *time.Duration
	var fams *int
	return apiCommand(&command{name: "access", args: "[--from TIME] [--to TIME] [--agent ID] [--long-ttl D] [--many-families N] [-o table|json]",
		summary: "standing access: granted versus exercised per agent, long TTLs, broad scopes, credentials spread across tools"}, apiCall[evidence.AccessReport]{
		token: "auditor or admin",
		flags: func(fs *flag.FlagSet) {
			from = fs.String("from", "720h", "window start: RFC 3339, or a duration ago")
			to = fs.String("to", "", "window end: RFC 3339, or a duration ago (default now)")
			agent = fs.String("agent", "", "only this agent `ID`")
			longTTL = fs.Duration("long-ttl", time.Hour, "flag tasks granted for longer than this")
			fams = fs.Int("many-families", 3, "flag credentials used for tools of at least this many families")
		},
		call: func(ctx context.Context, cl *client.Client, _ []string) (evidence.AccessReport, error) {
			var rep evidence.AccessReport
			v := url.Values{}
			if err := setTimes(v, time.Now(), map[string]string{"from": *from, "to": *to}); err != nil {
				return rep, err
			}
			if *agent != "" {
				v.Set("agent", *agent)
			}
			if *longTTL <= 0 || *fams < 2 {
				return rep, &usageError{msg: "--long-ttl must be positive and --many-families at least 2", hint: "the defaults are 1h and 3"}
			}
			v.Set("long_ttl", longTTL.String())
			v.Set("many_families", strconv.Itoa(*fams))
			err := cl.Do(ctx, "GET", "/v1/reports/access?"+v.Encode(), nil, &rep)
			return rep, err
		},
		table: printAccessReport,
	})
}

func printAccessReport(io IO, r evidence.AccessReport) error {
	w := io.Stdout
	list := func(s []string) string {
		if len(s) == 0 {
			return "-"
		}
		return strings.Join(s, ", ")
	}
	fmt.Fprintf(w, "standing access from %s to %s (UTC)\n", r.From.Format("2006-01-02 15:04"), r.To.Format("2006-01-02 15:04"))
	if len(r.Agents) == 0 {
		fmt.Fprintln(w, "\nno agent held or used access in this window")
	}
	for _, a := range r.Agents {
		fmt.Fprintf(w, "\n%s: %d task(s), %d call(s) allowed, %d denied\n", a.Agent, a.Tasks, a.Allowed, a.Denied)
		if a.Limited > 0 {
			fmt.Fprintf(w, "  tasks with limits   %d\n", a.Limited)
		}
		fmt.Fprintf(w, "  granted tools       %s\n", list(a.GrantedTools))
		fmt.Fprintf(w, "  exercised tools     %s\n", list(a.ExercisedTools))
		fmt.Fprintf(w, "  never used tools    %s\n", list(a.UnusedTools))
		fmt.Fprintf(w, "  granted resources   %s\n", list(a.GrantedResources))
		fmt.Fprintf(w, "  exercised resources %s\n", oneLine(list(a.ExercisedResources), 200))
		fmt.Fprintf(w, "  never used resources %s\n", list(a.UnusedResources))
	}
	fmt.Fprintf(w, "\ntasks granted for longer than %s: %d\n", r.Options.LongTTL, len(r.LongTTL))
	for _, t := range r.LongTTL {
		fmt.Fprintf(w, "  %s  %s  ttl %s (principal %s)\n", t.TaskID, t.Agent, t.TTL, t.Principal)
	}
	fmt.Fprintf(w, "\nbroad scopes: %d\n", len(r.BroadScopes))
	for _, t := range r.BroadScopes {
		fmt.Fprintf(w, "  %s  %s  %s\n", t.TaskID, t.Agent, t.Reason)
	}
	if len(r.Limited) > 0 {
		fmt.Fprintf(w, "\ntasks with limits: %d\n", len(r.Limited))
	}
	for _, t := range r.Limited {
		fmt.Fprintf(w, "  %s  %s  %s; %d call(s) allowed in the window\n", t.TaskID, t.Agent, t.Limits.String(), t.Allowed)
	}
	fmt.Fprintf(w, "\ncredentials used across unrelated tools or environments: %d\n", len(r.Credentials))
	for _, c := range r.Credentials {
		fmt.Fprintf(w, "  %s  task %s  %s: %s\n", c.JTI, c.TaskID, c.Agent, c.Reason)
	}
	return nil
}
