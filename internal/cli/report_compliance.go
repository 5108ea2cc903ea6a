package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/writhq/writ/client"
	"github.com/writhq/writ/internal/evidence"
)

func reportComplianceCommand() *command {
	var from, to, frameworks, html *string
	return apiCommand(&command{name: "compliance", args: "[--framework F,…] [--from TIME] [--to TIME] [--html FILE] [-o table|json]",
		summary: "readiness over a window of the whole ledger: records per control, missing approvals, credentials that outlived their tasks, standing access, refusals, witness and checkpoint status"},
		apiCall[evidence.ComplianceReport]{
			token: "auditor or admin",
			flags: func(fs *flag.FlagSet) {
				frameworks = fs.String("framework", "", "the frameworks, comma-separated: owasp-agentic, maestro, nist-ai-rmf, eu-ai-act, nist-csf, owasp-nhi (default all)")
				from = fs.String("from", "720h", "window start: RFC 3339, or a duration ago")
				to = fs.String("to", "", "window end: RFC 3339, or a duration ago (default now)")
				html = fs.String("html", "", "also write the report as a self-contained HTML page to `FILE`")
			},
			call: func(ctx context.Context, cl *client.Client, _ []string) (evidence.ComplianceReport, error) {
				var rep evidence.ComplianceReport
				v := url.Values{}
				if err := setTimes(v, time.Now(), map[string]string{"from": *from, "to": *to}); err != nil {
					return rep, err
				}
				if *frameworks != "" {
					v.Set("framework", *frameworks)
				}
				if err := cl.Do(ctx, "GET", "/v1/reports/compliance?"+v.Encode(), nil, &rep); err != nil {
					return rep, err
				}
				if *html != "" {
					page := evidence.ComplianceHTML(&rep)
					if _, err := writeBundle(*html, func(w io.Writer) error { _, err := io.Copy(w, bytes.NewReader(page)); return err }); err != nil {
						return rep, fmt.Errorf("writing %s: %w", *html, err)
					}
				}
				return rep, nil
			},
			table: printCompliance,
		})
}

func printCompliance(io IO, r evidence.ComplianceReport) error {
	w := io.Stdout
	fmt.Fprintf(w, "readiness from %s to %s (UTC): %d events", r.From.Format("2006-01-02 15:04"), r.To.Format("2006-01-02 15:04"), r.Events.Count)
	if r.FirstIndex != nil {
		fmt.Fprintf(w, ", ledger indexes %d to %d", *r.FirstIndex, *r.LastIndex)
	}
	fmt.Fprintln(w)
	l := r.Ledger
	cp := fmt.Sprintf("size %d, verifies", l.CheckpointSize)
	if !l.CheckpointVerified {
		cp = "DOES NOT VERIFY: " + l.CheckpointError
	} else if !l.CoversWindow {
		cp += ", but does not cover the window yet"
	}
	fmt.Fprintf(w, "\nledger %s: %d events; latest checkpoint %s\n", l.Origin, l.Size, cp)
	if ws := l.Witnesses; ws != nil {
		switch {
		case ws.WitnessedSize == 0:
			fmt.Fprintf(w, "witnesses: no checkpoint is cosigned by the quorum of %d yet\n", ws.Quorum)
		default:
			fmt.Fprintf(w, "witnesses: the checkpoint of size %d is cosigned by the quorum of %d; covers the window: %v\n", ws.WitnessedSize, ws.Quorum, ws.CoversWindow)
		}
		if len(ws.Refusing) > 0 {
			fmt.Fprintf(w, "witnesses refusing: %s\n", strings.Join(ws.Refusing, ", "))
		}
	} else {
		fmt.Fprintln(w, "witnesses: none configured")
	}
	fmt.Fprintf(w, "witness refusals        %s\n", figure(l.WitnessRefusals))
	fmt.Fprintf(w, "events not applied      %s (%d in the whole ledger)\n", figure(l.Unapplied), l.UnappliedTotal)

	fmt.Fprintf(w, "\nlacked an approval policy asked for: %d\n", len(r.Approvals.Lacking))
	for _, f := range r.Approvals.Lacking {
		fmt.Fprintf(w, "  event %d  task %s: %s%s\n", f.Index, f.TaskID, f.Reason, indexes(f.Events))
	}
	fmt.Fprintf(w, "approvals requested %s, granted %s, denied %s\n", figure(r.Approvals.Requested), figure(r.Approvals.Granted), figure(r.Approvals.Denied))
	fmt.Fprintf(w, "\ncredentials that outlived their tasks: %d\n", len(r.Credentials.Outlived))
	for _, f := range r.Credentials.Outlived {
		fmt.Fprintf(w, "  event %d  task %s  %s: %s%s\n", f.Index, f.TaskID, f.JTI, f.Reason, indexes(f.Events))
	}
	fmt.Fprintf(w, "credentials issued %s, revoked %s\n", figure(r.Credentials.Issued), figure(r.Credentials.Revoked))
	sa := r.StandingAccess
	fmt.Fprintf(w, "\nagents with standing access they did not use: %d\n", len(sa.Agents))
	for _, a := range sa.Agents {
		fmt.Fprintf(w, "  %s: never used %s; tasks %s\n", a.Agent, strings.Join(append(append([]string{}, a.UnusedTools...), a.UnusedResources...), ", "), figure(a.Tasks))
	}
	for _, group := range []struct {
		name string
		fs   []evidence.TaskFinding
	}{{"long-lived tasks", sa.LongTTL}, {"broad scopes", sa.BroadScopes}, {"credentials spread across tools", sa.Spread}} {
		fmt.Fprintf(w, "%s: %d\n", group.name, len(group.fs))
		for _, f := range group.fs {
			fmt.Fprintf(w, "  event %d  task %s  %s: %s\n", f.Index, f.TaskID, f.Agent, f.Reason)
		}
	}
	rf := r.Refusals
	fmt.Fprintf(w, "\nrefused: calls %s; tasks %s; credentials and requests %s", figure(rf.ActionsDenied), figure(rf.TasksDenied), figure(rf.AuthRejected))
	if rf.Summarized > 0 {
		fmt.Fprintf(w, " (summaries stand for %d)", rf.Summarized)
	}
	fmt.Fprintf(w, "; tools hidden %s\n", figure(rf.ToolsHidden))

	t := newTable(io)
	framework := ""
	for _, c := range r.Controls {
		if c.Framework != framework {
			framework = c.Framework
			fmt.Fprintf(t, "\n%s\t\t\n", framework)
		}
		fmt.Fprintf(t, "  %s %s\t%s\t%s\n", c.ID, oneLine(c.Title, 60), c.Status, figure(c.Records))
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if len(r.NotEstablished) > 0 {
		fmt.Fprintln(w, "\nnot established by writ:")
		for _, c := range r.NotEstablished {
			fmt.Fprintf(w, "  %s %s: %s\n", c.Framework, c.ID, c.Note)
		}
	}
	fmt.Fprintln(w, "\neach figure names the ledger events it counts (the first ten here; -o json lists up to 1000); check one with 'writ ledger proof <index>'")
	return nil
}

// figure writes a count and the first indexes it counts.
func figure(f evidence.Figure) string { return fmt.Sprintf("%d%s", f.Count, indexes(f.Events)) }
