package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/printable"
	"github.com/writhq/writ/internal/task"
)

func policyWhatIfCommand() *command {
	c := &command{name: "what-if",
		args:    "--bundle DIR [--engine E] [--since TIME] [--until TIME] [--task ID] [--point P] [--all] [--data-dir DIR] [-o table|json]",
		summary: "decide recorded decisions again against a candidate bundle, history included, and report which would change"}
	c.run = func(ctx context.Context, io IO, args []string) error {
		fs := newFlags(c, io)
		cf := addConfigFlags(fs)
		bundle := fs.String("bundle", "", "the candidate bundle `DIR`")
		engine := fs.String("engine", "", "the candidate's `language`: rego or cedar (default: from its files)")
		since := fs.String("since", "", "decisions at or after `TIME` (RFC 3339, or a duration ago such as 24h)")
		until := fs.String("until", "", "decisions before `TIME` (RFC 3339, or a duration ago)")
		taskID := fs.String("task", "", "only the decisions of task `ID`")
		point := fs.String("point", "", "only the decisions at `POINT`: task, exchange or action")
		all := fs.Bool("all", false, "list every decision, not only those that would change")
		timeout := fs.Duration("timeout", 0, "bound on each candidate decision (default policy.timeout)")
		out := fs.String("o", "table", "output `format`: table or json")
		if _, err := parseArgs(c, fs, args, 0, 0); err != nil {
			return err
		}
		if err := checkOutput(*out); err != nil {
			return err
		}
		if *bundle == "" {
			return &usageError{msg: "--bundle is required", hint: "point it at the candidate bundle's directory ('writ policy init DIR' writes the default pack to edit)"}
		}
		if err := checkEngine(*engine); err != nil {
			return err
		}
		if *point != "" {
			if _, err := policy.ParsePoint(*point); err != nil || *point == string(policy.PointList) {
				return &usageError{msg: fmt.Sprintf("--point %q: want task, exchange or action", *point)}
			}
		}
		w := whatIf{task: *taskID, point: policy.Point(*point), all: *all}
		now := time.Now()
		var err error
		if *since != "" {
			if w.since, err = timeFlag("since", *since, now); err != nil {
				return err
			}
		}
		if *until != "" {
			if w.until, err = timeFlag("until", *until, now); err != nil {
				return err
			}
		}
		src, err := loadBundle(*bundle, *engine)
		if err != nil {
			return err
		}
		cfg, d, err := cf.openRead(ctx, io)
		if err != nil {
			return err
		}
		defer d.Close()
		if *timeout <= 0 {
			*timeout = cfg.Policy.Timeout
		}
		if w.candidate, err = policy.CompileBundle(ctx, src, *timeout); err != nil {
			return withHint(fmt.Errorf("the candidate bundle: %w", err), "'writ policy check DIR' names what fails")
		}
		rep, err := w.run(ctx, d.Store)
		if err != nil {
			return err
		}
		if *out == "json" {
			return printJSONEscaped(io, rep)
		}
		return rep.table(io, w.all)
	}
	return c
}

// whatIf decides recorded decisions again against a candidate.
type whatIf struct {
	candidate    *policy.Bundle
	since, until time.Time
	task         string
	point        policy.Point
	all          bool
}

// whatIfReport is what `writ policy what-if` prints (-o json as is).
type whatIfReport struct {
	Bundle    string `json:"bundle_version"`
	Engine    string `json:"engine"`
	Decisions int    `json:"decisions"`
	Changed   int    `json:"changed"`
	// Changes counts the changed decisions by "recorded→candidate" effect.
	Changes map[string]int `json:"changes"`
	// Unreadable counts decisions whose input was erased or did not match
	// its commitment, which were not decided again.
	Unreadable int             `json:"unreadable"`
	Results    []whatIfOutcome `json:"results"`
}

// whatIfOutcome is one decision, recorded and as the candidate decides it.
type whatIfOutcome struct {
	Index      uint64         `json:"ledger_index"`
	Time       time.Time      `json:"time"`
	DecisionID string         `json:"decision_id"`
	Point      policy.Point   `json:"point"`
	TaskID     string         `json:"task_id,omitempty"`
	Tool       string         `json:"tool,omitempty"`
	Operation  string         `json:"operation,omitempty"`
	Resource   string         `json:"resource,omitempty"`
	Recorded   whatIfOutcome1 `json:"recorded"`
	Candidate  whatIfOutcome1 `json:"candidate"`
	Changed    bool           `json:"changed"`
	// History says where the call's history came from: "recorded" (its
	// input holds it), "replayed" (recorded before history was; rebuilt
	// from the ledger up to it) or "" (not an action).
	History string `json:"history,omitempty"`
	// Refused is writ's own refusal of the call (limit_reached, …),
	// which stands whatever the candidate says.
	Refused string `json:"refused,omitempty"`
}

// whatIfOutcome1 is one side of a decision.
type whatIfOutcome1 struct {
	PolicyVersion string   `json:"policy_version"`
	Effect        string   `json:"effect"`
	Reasons       []string `json:"reasons"`
	PolicyIDs     []string `json:"policy_ids,omitempty"`
}

// run scans the ledger once, in index order: it replays the task state as
// it goes, so a decision recorded without a history is given the history
// the ledger implies at its index, and decides each selected decision
// again.
func (w *whatIf) run(ctx context.Context, s ledger.Store) (*whatIfReport, error) {
	rep := &whatIfReport{Bundle: w.candidate.Version(), Engine: w.candidate.Engine(), Changes: map[string]int{}, Results: []whatIfOutcome{}}
	st := task.NewState()
	err := s.ScanLeaves(ctx, 0, func(i uint64, leaf []byte) error {
		e, err := ledger.ParseLeaf(i, leaf)
		if err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		if err := w.decide(ctx, s, st, e, rep); err != nil {
			return err
		}
		if task.Relevant(e.Event.Type) {
			st.Replay(e)
		}
		return nil
	})
	return rep, err
}

// decide decides e again when it records a selected decision.
func (w *whatIf) decide(ctx context.Context, s ledger.Store, st *task.State, e ledger.Entry, rep *whatIfReport) error {
	ev := &e.Event
	if ev.DecisionID == "" || e.Commitments["input"] == "" || ev.Type == ledger.TypePolicyShadow {
		return nil
	}
	if (!w.since.IsZero() && ev.Time.Before(w.since)) || (!w.until.IsZero() && !ev.Time.Before(w.until)) ||
		(w.task != "" && ev.TaskID != w.task) {
		return nil
	}
	data, err := event.Read(*ev)
	if err != nil {
		return fmt.Errorf("event %d: %w", e.Index, err)
	}
	o := whatIfOutcome{Index: e.Index, Time: ev.Time, DecisionID: ev.DecisionID, TaskID: ev.TaskID}
	o.Recorded.PolicyVersion = ev.PolicyVersion
	switch d := data.(type) {
	case event.PolicyDecided:
		o.Point, o.Recorded.Effect, o.Recorded.Reasons, o.Recorded.PolicyIDs = policy.Point(d.Point), d.Effect, d.Reasons, d.PolicyIDs
	case event.ActionDecided:
		o.Point, o.Recorded.Effect, o.Recorded.Reasons, o.Recorded.PolicyIDs = policy.PointAction, d.Effect, d.Reasons, d.PolicyIDs
		o.Tool, o.Operation, o.Resource, o.Refused = d.Tool, d.Operation, d.Resource, d.Refused
	default:
		return nil
	}
	if w.point != "" && o.Point != w.point {
		return nil
	}
	body, err := s.ReadBody(ctx, ledger.BodyRef{Index: e.Index, Name: "input"})
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		rep.Unreadable++
		return nil
	case err != nil:
		return err
	case ledger.Commit(body.Salt, body.Data) != e.Commitments["input"]:
		rep.Unreadable++
		return nil
	}
	in, err := policy.ParseInput(body.Data)
	if err != nil {
		rep.Unreadable++
		return nil
	}
	if o.Point == policy.PointAction && in.Action != nil {
		o.History = "recorded"
		if in.History == nil {
			if h, ok := st.HistoryOf(ev.TaskID, in.Action.Tool, in.Action.Operation, in.Action.Resource, in.Request.Time); ok {
				in.History, o.History = h, "replayed"
			}
		}
	}
	got := w.candidate.Decide(ctx, o.Point, in)
	o.Candidate = whatIfOutcome1{PolicyVersion: got.PolicyVersion, Effect: string(got.Effect), Reasons: got.Reasons, PolicyIDs: got.PolicyIDs}
	o.Changed = o.Candidate.Effect != o.Recorded.Effect || !slices.Equal(sortedCopy(o.Candidate.Reasons), sortedCopy(o.Recorded.Reasons))
	rep.Decisions++
	if o.Changed {
		rep.Changed++
		rep.Changes[o.Recorded.Effect+"→"+o.Candidate.Effect]++
	}
	if o.Changed || w.all {
		rep.Results = append(rep.Results, o)
	}
	return nil
}

func sortedCopy(l []string) []string {
	out := slices.Clone(l)
	slices.Sort(out)
	return out
}

// table prints the report: a summary, then one line per decision listed.
func (r *whatIfReport) table(io IO, all bool) error {
	fmt.Fprintf(io.Stdout, "candidate  %s (%s)\n", r.Bundle, r.Engine)
	fmt.Fprintf(io.Stdout, "decisions  %d decided again, %d would change", r.Decisions, r.Changed)
	if r.Unreadable > 0 {
		fmt.Fprintf(io.Stdout, ", %d not decided (input erased or not matching its commitment)", r.Unreadable)
	}
	fmt.Fprintln(io.Stdout)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range r.Changes {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(io.Stdout, "           %s: %d\n", k, r.Changes[k])
	}
	if len(r.Results) == 0 {
		if !all {
			fmt.Fprintln(io.Stdout, "result     no recorded decision would change")
		}
		return nil
	}
	fmt.Fprintln(io.Stdout)
	tw := newTable(io)
	fmt.Fprintln(tw, "INDEX\tTIME\tPOINT\tTASK\tCALL\tRECORDED\tCANDIDATE\tREASONS")
	for _, o := range r.Results {
		call := ""
		if o.Tool != "" {
			call = o.Tool + " " + o.Operation + " " + o.Resource
		}
		rec := o.Recorded.Effect
		if o.Refused != "" {
			rec += " (refused: " + o.Refused + ")"
		}
		cand := o.Candidate.Effect
		if !o.Changed {
			cand = "="
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.Index, o.Time.Format(time.RFC3339), o.Point, o.TaskID,
			oneLine(printable.ShowString(call), 60), rec, cand, oneLine(printable.ShowString(strings.Join(o.Candidate.Reasons, "; ")), 80))
	}
	return tw.Flush()
}
