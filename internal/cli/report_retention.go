package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/writhq/writ/client"
	"github.com/writhq/writ/internal/retention"
)

func reportRetentionCommand() *command {
	return apiCommand(&command{name: "retention", args: "[-o table|json]",
		summary: "what retention will erase when, and what legal holds keep (docs/retention.md)"}, apiCall[retention.Plan]{
		token: "auditor or admin",
		call: func(ctx context.Context, cl *client.Client, _ []string) (retention.Plan, error) {
			var p retention.Plan
			err := cl.Do(ctx, "GET", "/v1/reports/retention", nil, &p)
			return p, err
		},
		table: printRetention,
	})
}

func printRetention(io IO, p retention.Plan) error {
	w := io.Stdout
	fmt.Fprintf(w, "retention as of %s (UTC): minimum %s, a sweep every %s\n", p.At.Format("2006-01-02 15:04"), p.Minimum, p.Interval)
	if len(p.Rules) == 0 {
		fmt.Fprintln(w, "\nno retention rules: bodies are kept until erased by request (docs/retention.md)")
	}
	for i, r := range p.Rules {
		what := r.Type
		if r.Body != "" {
			what += " " + r.Body
		}
		if r.DataClass != "" {
			what += " (" + r.DataClass + ")"
		}
		fmt.Fprintf(w, "\nrule %d: %s, kept %s; events before %s are due; swept through event %d\n",
			i+1, what, r.Keep, r.Cutoff.Format("2006-01-02 15:04"), r.Cursor)
		fmt.Fprintf(w, "  due now        %d%s\n", r.Due.Count, indexes(r.Due.Events))
		fmt.Fprintf(w, "  due but held   %d%s\n", r.Held.Count, indexes(r.Held.Events))
		if len(r.Schedule) == 0 {
			fmt.Fprintln(w, "  to come        none")
		}
		for _, m := range r.Schedule {
			fmt.Fprintf(w, "  due in %s %d, the first on %s (event %d)\n", m.Month, m.Count, m.First.Format("2006-01-02"), m.FirstEvent)
		}
	}
	fmt.Fprintf(w, "\nlegal holds: %d\n", len(p.Holds))
	for _, h := range p.Holds {
		fmt.Fprintf(w, "  %s held since %s by %s [event %d]: %s\n", h.TaskID, h.At.Format("2006-01-02 15:04"), h.By, h.LedgerIndex, oneLine(h.Reason, 200))
		fmt.Fprintf(w, "    covers %s; keeps %d due bod%s%s\n", strings.Join(h.Covers, ", "), h.Kept.Count, plural(h.Kept.Count, "y", "ies"), indexes(h.Kept.Events))
	}
	if s := p.LastSweep; s != nil {
		status := fmt.Sprintf("erased %d, left %d for holds", s.Erased, s.Held)
		switch {
		case s.Skipped:
			status = "another replica swept"
		case s.Error != "":
			status += "; failed: " + s.Error
		}
		fmt.Fprintf(w, "\nlast sweep on this server at %s: %s\n", s.At.Format("2006-01-02 15:04"), status)
	}
	return nil
}

// indexes lists ledger indexes for a table line: the first few.
func indexes(idx []uint64) string {
	if len(idx) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(" (events ")
	for i, x := range idx {
		if i == 10 {
			fmt.Fprintf(&b, " … %d more", len(idx)-i)
			break
		}
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(strconv.FormatUint(x, 10))
	}
	b.WriteString(")")
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
