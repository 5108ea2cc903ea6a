package evidence

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/query"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/witness"
)

// The readiness report (`writ report compliance`): over a window of the
// whole ledger, per control of the mapping, how many records evidence it,
// and the findings an auditor asks about first — tasks and calls that
// lacked an approval policy asked for, credentials that outlived their
// tasks, standing access, refusals, and whether the ledger and its
// witnesses verify. Every figure lists the ledger indexes it counts
// (Figure), so that each can be checked with `writ ledger proof`.

// Frameworks maps the short names `--framework` takes to the mapping's
// framework names.
var Frameworks = map[string]string{
	"owasp-agentic": "OWASP Top 10 for Agentic Applications (2026)",
	"maestro":       "CSA MAESTRO",
	"nist-ai-rmf":   "NIST AI RMF 1.0",
	"eu-ai-act":     "EU AI Act",
	"nist-csf":      "NIST CSF 2.0",
	"owasp-nhi":     "OWASP Non-Human Identities Top 10 (2025)",
}

// ComplianceOptions select the report.
type ComplianceOptions struct {
	// Frameworks are short names (Frameworks) or full names; none is all.
	Frameworks []string
	// From and To bound the window; To defaults to now and From to 30
	// days before To.
	From, To time.Time
}

// ComplianceSource is what the report reads.
type ComplianceSource struct {
	Store ledger.Store
	Index *query.Index
	// VerifierKey is the ledger's note verifier key, to check the latest
	// checkpoint with.
	VerifierKey string
	// Witnesses, when set (witnesses are configured), reads their state.
	Witnesses func(ctx context.Context) (witness.Status, error)
	// Skipped, when set, lists the events the task state could not apply.
	Skipped func() ([]task.Skipped, int)
	Now     func() time.Time
}

// Figure is a count and the ledger indexes of what it counts, ascending
// (at most MaxListed).
type Figure struct {
	Count  int      `json:"count"`
	Events []uint64 `json:"events"`
}

// MaxListed bounds the indexes a Figure lists.
const MaxListed = 1000

func (f *Figure) add(i uint64) {
	f.Count++
	if len(f.Events) < MaxListed {
		f.Events = append(f.Events, i)
	}
}

func newFigure() Figure { return Figure{Events: []uint64{}} }

// ComplianceReport is the readiness report.
type ComplianceReport struct {
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	GeneratedAt time.Time `json:"generated_at"`
	Frameworks  []string  `json:"frameworks"`
	// ControlsVersion is the version of the controls mapping used.
	ControlsVersion int `json:"controls_version"`
	// Events are the window's events; IndexedThrough how much of the
	// ledger the query index held when the report was made.
	Events Figure `json:"events"`
	// FirstIndex and LastIndex are the window's first and last event.
	FirstIndex     *uint64           `json:"first_index,omitempty"`
	LastIndex      *uint64           `json:"last_index,omitempty"`
	IndexedThrough uint64            `json:"indexed_through"`
	Ledger         LedgerReadiness   `json:"ledger"`
	Controls       []ControlFigure   `json:"controls"`
	Approvals      ApprovalFigures   `json:"approvals"`
	Credentials    CredentialFigures `json:"credentials"`
	StandingAccess StandingAccess    `json:"standing_access"`
	Refusals       RefusalFigures    `json:"refusals"`
	// NotEstablished are the controls writ keeps nothing for, with why.
	NotEstablished []ControlNote `json:"not_established"`
}

// ControlFigure is one control over the window.
type ControlFigure struct {
	Framework string `json:"framework"`
	ID        string `json:"control"`
	Title     string `json:"title"`
	// Status is "evidenced", "no records in this window" or "not
	// established by writ".
	Status   string `json:"status"`
	Records  Figure `json:"records"`
	Evidence string `json:"evidence"`
	Note     string `json:"note,omitempty"`
}

// ControlNote is a control writ does not establish.
type ControlNote struct {
	Framework string `json:"framework"`
	ID        string `json:"control"`
	Title     string `json:"title"`
	Note      string `json:"note"`
}

// LedgerReadiness is whether the ledger's records can be relied on.
type LedgerReadiness struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	// CheckpointSize is the latest signed checkpoint's size;
	// CheckpointVerified whether its signature verifies with the
	// verifier key, CheckpointError why not; CoversWindow whether it
	// covers the window's last event.
	CheckpointSize     uint64 `json:"checkpoint_size"`
	CheckpointVerified bool   `json:"checkpoint_verified"`
	CheckpointError    string `json:"checkpoint_error,omitempty"`
	CoversWindow       bool   `json:"covers_window"`
	// Witnesses, when configured.
	Witnesses *WitnessReadiness `json:"witnesses,omitempty"`
	// WitnessRefusals are the witness.refused events of the window;
	// Unapplied the events of the window the task state could not apply
	// (UnappliedTotal: in the whole ledger).
	WitnessRefusals Figure `json:"witness_refusals"`
	Unapplied       Figure `json:"unapplied_events"`
	UnappliedTotal  int    `json:"unapplied_total"`
	// Note says what the report does not check.
	Note string `json:"note"`
}

// WitnessReadiness is the witnesses' part.
type WitnessReadiness struct {
	Quorum int `json:"quorum"`
	// WitnessedSize is the newest checkpoint the quorum cosigned (0: none);
	// CoversWindow whether it covers the window's last event.
	WitnessedSize uint64   `json:"witnessed_size"`
	CoversWindow  bool     `json:"covers_window"`
	Refusing      []string `json:"refusing"`
}

// ApprovalFigures are the window's approvals, and what lacked one.
type ApprovalFigures struct {
	Requested Figure `json:"requested"`
	Granted   Figure `json:"granted"`
	Denied    Figure `json:"denied"`
	// Lacking are tasks activated and calls allowed in the window where
	// policy asked for an approval (or denied) and the recorded approvals
	// do not cover them. There should be none.
	Lacking []Finding `json:"lacking"`
}

// CredentialFigures are the window's credentials, and those that outlived
// their tasks.
type CredentialFigures struct {
	Issued  Figure `json:"issued"`
	Revoked Figure `json:"revoked"`
	// Outlived are credentials not revoked when their task ended, used
	// after it or after their revocation, or expiring after their task.
	// There should be none.
	Outlived []Finding `json:"outlived"`
}

// Finding is one thing that should not be, at a ledger index.
type Finding struct {
	TaskID string `json:"task_id"`
	JTI    string `json:"jti,omitempty"`
	// Index is the event the finding is about; Events the others it
	// rests on.
	Index  uint64   `json:"index"`
	Events []uint64 `json:"events"`
	Reason string   `json:"reason"`
}

// StandingAccess is the standing-access report's findings (Access), each
// linked to the task.requested of the tasks it rests on.
type StandingAccess struct {
	Agents      []AgentStanding `json:"agents"`
	LongTTL     []TaskFinding   `json:"long_ttl_tasks"`
	BroadScopes []TaskFinding   `json:"broad_scopes"`
	Spread      []TaskFinding   `json:"spread_credentials"`
}

// AgentStanding is an agent granted more than it used.
type AgentStanding struct {
	Agent           string   `json:"agent"`
	UnusedTools     []string `json:"unused_tools"`
	UnusedResources []string `json:"unused_resources"`
	// Tasks are the task.requested events of its tasks in the window.
	Tasks Figure `json:"tasks"`
}

// TaskFinding is a task (or a credential of one) that stands out.
type TaskFinding struct {
	TaskID string `json:"task_id"`
	Agent  string `json:"agent"`
	JTI    string `json:"jti,omitempty"`
	// Index is the task's task.requested event.
	Index  uint64 `json:"index"`
	Reason string `json:"reason"`
}

// RefusalFigures are what was refused in the window.
type RefusalFigures struct {
	ActionsDenied Figure `json:"actions_denied"`
	TasksDenied   Figure `json:"tasks_denied"`
	// AuthRejected are auth.rejected events; a summary stands for many
	// refusals, which Summarized counts.
	AuthRejected Figure `json:"auth_rejected"`
	Summarized   int64  `json:"summarized"`
	ToolsHidden  Figure `json:"tools_hidden"`
}

// Compliance builds the readiness report from the query index and the
// ledger's store. Errors wrapping query.ErrInvalid are the caller's (an
// unknown framework, a window that ends before it starts).
func Compliance(ctx context.Context, src ComplianceSource, opts ComplianceOptions) (*ComplianceReport, error) {
	if src.Now == nil {
		src.Now = time.Now
	}
	now := src.Now().UTC()
	if opts.To.IsZero() {
		opts.To = now
	}
	if opts.From.IsZero() {
		opts.From = opts.To.Add(-30 * 24 * time.Hour)
	}
	if opts.From.After(opts.To) {
		return nil, fmt.Errorf("%w: the window's start is after its end", query.ErrInvalid)
	}
	frameworks, err := selectFrameworks(opts.Frameworks)
	if err != nil {
		return nil, err
	}
	all, err := Controls()
	if err != nil {
		return nil, err
	}
	rep := &ComplianceReport{From: opts.From.UTC(), To: opts.To.UTC(), GeneratedAt: now, Frameworks: frameworks,
		ControlsVersion: ControlsVersion, Events: newFigure(), NotEstablished: []ControlNote{}}
	var controls []Control
	for _, c := range all {
		if slices.Contains(frameworks, c.Framework) {
			controls = append(controls, c)
			rep.Controls = append(rep.Controls, ControlFigure{Framework: c.Framework, ID: c.ID, Title: c.Title,
				Records: newFigure(), Evidence: c.Evidence, Note: c.Note})
		}
	}
	w := &window{rep: rep, src: src, opts: opts, tasks: map[string]bool{}}
	w.init()
	if err := w.scan(ctx, controls); err != nil {
		return nil, err
	}
	if w.any {
		first, last := w.first, w.last
		rep.FirstIndex, rep.LastIndex = &first, &last
	}
	for i := range rep.Controls {
		c := &rep.Controls[i]
		switch {
		case len(controls[i].EventTypes) == 0:
			c.Status = "not established by writ"
			rep.NotEstablished = append(rep.NotEstablished, ControlNote{Framework: c.Framework, ID: c.ID, Title: c.Title, Note: c.Note})
		case c.Records.Count == 0:
			c.Status = "no records in this window"
		default:
			c.Status = "evidenced"
		}
	}
	if err := w.chains(ctx); err != nil {
		return nil, err
	}
	if err := w.summarized(ctx); err != nil {
		return nil, err
	}
	if err := w.standing(ctx); err != nil {
		return nil, err
	}
	if err := w.ledger(ctx); err != nil {
		return nil, err
	}
	return rep, nil
}

// selectFrameworks resolves the names asked for, in the mapping's order.
func selectFrameworks(names []string) ([]string, error) {
	all, err := Controls()
	if err != nil {
		return nil, err
	}
	var order []string
	for _, c := range all {
		if !slices.Contains(order, c.Framework) {
			order = append(order, c.Framework)
		}
	}
	if len(names) == 0 {
		return order, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		full, ok := Frameworks[strings.ToLower(strings.TrimSpace(n))]
		if !ok {
			for _, f := range order {
				if strings.EqualFold(f, strings.TrimSpace(n)) {
					full, ok = f, true
				}
			}
		}
		if !ok {
			keys := slices.Sorted(func(yield func(string) bool) {
				for k := range Frameworks {
					if !yield(k) {
						return
					}
				}
			})
			return nil, fmt.Errorf("%w: unknown framework %q: want one of %s, or a framework's full name", query.ErrInvalid, n, strings.Join(keys, ", "))
		}
		want[full] = true
	}
	var out []string
	for _, f := range order {
		if want[f] {
			out = append(out, f)
		}
	}
	return out, nil
}

// window is the report being built.
type window struct {
	rep  *ComplianceReport
	src  ComplianceSource
	opts ComplianceOptions
	// tasks are the tasks with events in the window; first and last the
	// window's first and last index.
	tasks       map[string]bool
	first, last uint64
	any         bool
	// requested is each task's task.requested index, as far as known.
	requested map[string]uint64
	// summaries are the auth.rejected events that may be summaries of
	// many refusals (they name no task, agent or principal).
	summaries []uint64
}

func (w *window) init() {
	r := w.rep
	r.Approvals = ApprovalFigures{Requested: newFigure(), Granted: newFigure(), Denied: newFigure(), Lacking: []Finding{}}
	r.Credentials = CredentialFigures{Issued: newFigure(), Revoked: newFigure(), Outlived: []Finding{}}
	r.Refusals = RefusalFigures{ActionsDenied: newFigure(), TasksDenied: newFigure(), AuthRejected: newFigure(), ToolsHidden: newFigure()}
	r.StandingAccess = StandingAccess{Agents: []AgentStanding{}, LongTTL: []TaskFinding{}, BroadScopes: []TaskFinding{}, Spread: []TaskFinding{}}
	r.Ledger.WitnessRefusals, r.Ledger.Unapplied = newFigure(), newFigure()
	w.requested = map[string]uint64{}
}

// scan pages through the window's events in the index, counting them by
// type and control.
func (w *window) scan(ctx context.Context, controls []Control) error {
	r := w.rep
	figures := map[string]*Figure{
		ledger.TypeApprovalRequested: &r.Approvals.Requested, ledger.TypeApprovalGranted: &r.Approvals.Granted,
		ledger.TypeApprovalDenied: &r.Approvals.Denied, ledger.TypeCredentialIssued: &r.Credentials.Issued,
		ledger.TypeCredentialRevoked: &r.Credentials.Revoked, ledger.TypeActionDenied: &r.Refusals.ActionsDenied,
		ledger.TypeTaskDenied: &r.Refusals.TasksDenied, ledger.TypeAuthRejected: &r.Refusals.AuthRejected,
		ledger.TypeToolsHidden: &r.Refusals.ToolsHidden, ledger.TypeWitnessRefused: &r.Ledger.WitnessRefusals,
	}
	f := query.Filter{From: w.opts.From, To: w.opts.To, Limit: query.MaxLimit}
	for {
		p, err := w.src.Index.Events(ctx, f)
		if err != nil {
			return err
		}
		r.IndexedThrough = p.IndexedThrough
		for _, e := range p.Events {
			if !w.any {
				w.first, w.any = e.Index, true
			}
			w.last = e.Index
			r.Events.add(e.Index)
			if fig := figures[e.Type]; fig != nil {
				fig.add(e.Index)
			}
			if e.Type == ledger.TypeAuthRejected && e.TaskID == "" && e.Agent == "" && e.Principal == "" {
				w.summaries = append(w.summaries, e.Index)
			}
			if e.TaskID != "" {
				w.tasks[e.TaskID] = true
				if e.Type == ledger.TypeTaskRequested {
					w.requested[e.TaskID] = e.Index
				}
			}
			for i, c := range controls {
				for _, t := range c.EventTypes {
					if t == "*" || t == e.Type {
						r.Controls[i].Records.add(e.Index)
						break
					}
				}
			}
		}
		if p.Next == "" {
			return nil
		}
		f.After = p.Next
	}
}

// inWindow reports whether index i is one of the window's events.
func (w *window) inWindow(i uint64) bool { return w.any && i >= w.first && i <= w.last }

// requestIndex returns the index of a task's task.requested.
func (w *window) requestIndex(ctx context.Context, taskID string) (uint64, error) {
	if i, ok := w.requested[taskID]; ok {
		return i, nil
	}
	p, err := w.src.Index.Events(ctx, query.Filter{TaskID: taskID, Type: ledger.TypeTaskRequested, Limit: 1})
	if err != nil {
		return 0, err
	}
	if len(p.Events) == 0 {
		return 0, fmt.Errorf("task %s: %w", taskID, ledger.ErrNotFound)
	}
	w.requested[taskID] = p.Events[0].Index
	return p.Events[0].Index, nil
}

// ledger fills in the ledger's and the witnesses' status.
func (w *window) ledger(ctx context.Context) error {
	l := &w.rep.Ledger
	l.Note = "The report checks the latest checkpoint's signature and what the witnesses cosigned; it does not recompute the tree or the commitments: run 'writ ledger verify' for that, and 'writ verify' on exported bundles."
	size, err := w.src.Store.Size(ctx)
	if err != nil {
		return err
	}
	l.Size = size
	v, err := ledger.NewVerifier(w.src.VerifierKey)
	if err != nil {
		return err
	}
	l.Origin = v.Name()
	cp, err := w.src.Store.LatestCheckpoint(ctx)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		l.CheckpointError = "no checkpoint is signed yet"
	case err != nil:
		return err
	default:
		l.CheckpointSize = cp.Size
		if _, err := ledger.OpenCheckpoint(cp.Note, l.Origin, v); err != nil {
			l.CheckpointError = err.Error()
		} else {
			l.CheckpointVerified = true
		}
		l.CoversWindow = l.CheckpointVerified && (!w.any || cp.Size > w.last)
	}
	if w.src.Witnesses != nil {
		st, err := w.src.Witnesses(ctx)
		if err != nil {
			return err
		}
		wr := &WitnessReadiness{Quorum: st.Quorum, Refusing: []string{}}
		if st.Witnessed != nil {
			wr.WitnessedSize = st.Witnessed.Checkpoint.Size
			wr.CoversWindow = !w.any || wr.WitnessedSize > w.last
		}
		for _, r := range st.Refusals() {
			wr.Refusing = append(wr.Refusing, r.Name)
		}
		l.Witnesses = wr
	}
	if w.src.Skipped != nil {
		skipped, n := w.src.Skipped()
		l.UnappliedTotal = n
		for _, k := range skipped {
			if w.inWindow(k.Index) {
				l.Unapplied.add(k.Index)
			}
		}
	}
	return nil
}

// standing links the standing-access report's findings to their tasks.
func (w *window) standing(ctx context.Context) error {
	acc, err := Access(ctx, w.src.Index, AccessOptions{From: w.opts.From, To: w.opts.To})
	if err != nil {
		return err
	}
	tasks, err := w.src.Index.TasksActiveIn(ctx, w.opts.From, w.opts.To)
	if err != nil {
		return err
	}
	s := &w.rep.StandingAccess
	for _, a := range acc.Agents {
		if len(a.UnusedTools) == 0 && len(a.UnusedResources) == 0 {
			continue
		}
		as := AgentStanding{Agent: a.Agent, UnusedTools: a.UnusedTools, UnusedResources: a.UnusedResources, Tasks: newFigure()}
		var idx []uint64
		for _, t := range tasks {
			if t.Agent == a.Agent {
				i, err := w.requestIndex(ctx, t.TaskID)
				if err != nil {
					return err
				}
				idx = append(idx, i)
			}
		}
		slices.Sort(idx)
		for _, i := range idx {
			as.Tasks.add(i)
		}
		s.Agents = append(s.Agents, as)
	}
	flag := func(id, agent, jti, reason string) (TaskFinding, error) {
		i, err := w.requestIndex(ctx, id)
		return TaskFinding{TaskID: id, Agent: agent, JTI: jti, Index: i, Reason: reason}, err
	}
	for _, t := range acc.LongTTL {
		f, err := flag(t.TaskID, t.Agent, "", t.Reason)
		if err != nil {
			return err
		}
		s.LongTTL = append(s.LongTTL, f)
	}
	for _, t := range acc.BroadScopes {
		f, err := flag(t.TaskID, t.Agent, "", t.Reason)
		if err != nil {
			return err
		}
		s.BroadScopes = append(s.BroadScopes, f)
	}
	for _, c := range acc.Credentials {
		f, err := flag(c.TaskID, c.Agent, c.JTI, c.Reason)
		if err != nil {
			return err
		}
		s.Spread = append(s.Spread, f)
	}
	return nil
}

// summarized counts the refusals the window's summaries stand for.
func (w *window) summarized(ctx context.Context) error {
	ents, err := readEntries(ctx, w.src.Store, w.summaries)
	if err != nil {
		return err
	}
	for _, ent := range ents {
		if d, _ := event.Read(ent.Event); d != nil {
			if s, ok := d.(event.RejectionSummary); ok {
				w.rep.Refusals.Summarized += s.Count
			}
		}
	}
	return nil
}

//go:embed compliance.html.tmpl
var complianceTemplate string

var complianceTmpl = template.Must(template.New("compliance").Parse(complianceTemplate))

// ComplianceHTML renders the report as a self-contained page (no scripts,
// no outside resources), like a bundle's report.html.
func ComplianceHTML(r *ComplianceReport) []byte {
	type group struct {
		Framework string
		Controls  []ControlFigure
	}
	d := struct {
		R                         *ComplianceReport
		From, To, Generated, Span string
		Listed                    int
		Groups                    []group
	}{R: r, From: fmtTime(r.From), To: fmtTime(r.To), Generated: r.GeneratedAt.UTC().Format("2006-01-02 15:04:05 UTC"), Listed: 50}
	if r.FirstIndex != nil && r.LastIndex != nil {
		d.Span = fmt.Sprintf("%d to %d", *r.FirstIndex, *r.LastIndex)
	}
	for _, c := range r.Controls {
		if n := len(d.Groups); n == 0 || d.Groups[n-1].Framework != c.Framework {
			d.Groups = append(d.Groups, group{Framework: c.Framework})
		}
		d.Groups[len(d.Groups)-1].Controls = append(d.Groups[len(d.Groups)-1].Controls, c)
	}
	var b bytes.Buffer
	if err := complianceTmpl.Execute(&b, d); err != nil {
		panic(err) // the template is fixed and checked by the tests
	}
	return b.Bytes()
}
