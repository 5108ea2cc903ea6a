package task

import (
	"slices"
	"strings"
	"time"

	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
)

// State is the projection of the ledger's task-related events: tasks,
// approvals, credentials and actions. Apply is its only writer, so State is
// whatever the events imply and nothing else. State is not safe for
// concurrent use; the Service guards it.
type State struct {
	tasks     map[string]*Task
	approvals map[string]*Approval
	creds     map[string]*Credential
	// actions are the actions in flight: authorized, their result not yet
	// recorded (flight.go), flights each task's part of them, and details
	// what a result needs of the latest ones. A completed action leaves
	// them (done.go); the ledger keeps it, and recent the latest
	// completed ones.
	actions actionSet
	flights map[string]*taskFlights
	details recentDetails
	order   []string // task IDs in request order
	// events are each task's event indexes (Task.Events), packed.
	events map[string]*eventList
	// paths are the redact paths of actions in flight, one copy of each
	// list (sharedPaths).
	paths map[string][]string
	// endedTasks are the ended tasks whose actions in flight are still
	// kept (forget.go).
	endedTasks []endedTask
	recent     recentDone
	// maxAuthorized is the highest ledger index of an action.authorized
	// applied; queue the table's actions by index, and spilled each
	// task's count of actions in flight past the window, spilledN their
	// sum (spill.go).
	maxAuthorized uint64
	queue         spillQueue
	spilled       map[string]int
	spilledN      int
	// skipped are the events Replay left out (skipped.go), skippedN how
	// many.
	skipped  []Skipped
	skippedN int
	// history counts each task's calls (history.go), agents each agent's
	// over the windows; holds and held are the calls being committed
	// against limits (limits.go).
	history map[string]*taskHistory
	agents  map[string]*window
	holds   map[string]*hold
	held    map[string]*held
	// releases are the legal holds lifted, in log order (hold.go).
	releases []Release
}

// NewState returns an empty State.
func NewState() *State {
	return &State{
		tasks:     map[string]*Task{},
		approvals: map[string]*Approval{},
		creds:     map[string]*Credential{},
		flights:   map[string]*taskFlights{},
		events:    map[string]*eventList{},
		paths:     map[string][]string{},
		spilled:   map[string]int{},

		history: map[string]*taskHistory{},
		agents:  map[string]*window{},
		holds:   map[string]*hold{},
		held:    map[string]*held{},
	}
}

// Relevant reports whether Apply acts on events of type t.
func Relevant(t string) bool {
	switch t {
	case ledger.TypeTaskRequested, ledger.TypePolicyDecided, ledger.TypeApprovalRequested,
		ledger.TypeApprovalGranted, ledger.TypeApprovalDenied, ledger.TypeTaskActivated,
		ledger.TypeCredentialIssued, ledger.TypeCredentialRevoked, ledger.TypeActionAuthorized,
		ledger.TypeActionDenied, ledger.TypeActionCompleted, ledger.TypeTaskDelegated,
		ledger.TypeTaskCompleted, ledger.TypeTaskExpired, ledger.TypeTaskRevoked,
		ledger.TypeTaskDenied, ledger.TypeAuthRejected, ledger.TypeToolsHidden,
		ledger.TypeTaskHeld, ledger.TypeTaskReleased, ledger.TypeBodyErased:
		return true
	}
	return false
}

// Apply folds one event into the state. It returns an error wrapping
// ErrIncoherent, and changes nothing, when the event does not follow from
// the events before it: an activation of a task never requested, an
// approval by the task's requester, an action under an unknown task. Events
// of other types, and policy.decided or auth.rejected events without a task,
// are ignored.
func (s *State) Apply(e ledger.Entry) error {
	ev := &e.Event
	if !Relevant(ev.Type) {
		return nil
	}
	if ev.Type == ledger.TypeBodyErased {
		s.applyErased(e) // erase.go
		return nil
	}
	if ev.TaskID == "" {
		if ev.Type == ledger.TypePolicyDecided || ev.Type == ledger.TypeAuthRejected || ev.Type == ledger.TypeToolsHidden {
			return nil
		}
		return incoherent(e.Index, "%s without a task_id", ev.Type)
	}
	if ev.Type == ledger.TypeTaskRequested {
		return s.applyRequested(e)
	}
	t := s.tasks[ev.TaskID]
	if t == nil {
		if ev.Type == ledger.TypeAuthRejected || ev.Type == ledger.TypeToolsHidden {
			return nil // refusals may name tasks that do not exist
		}
		return incoherent(e.Index, "%s for unknown task %s", ev.Type, ev.TaskID)
	}
	var err error
	switch ev.Type {
	case ledger.TypePolicyDecided:
		err = s.applyDecided(e, t)
	case ledger.TypeTaskActivated:
		err = s.applyActivated(e, t)
	case ledger.TypeTaskDenied:
		err = s.applyTaskDenied(e, t)
	case ledger.TypeApprovalRequested:
		err = s.applyApprovalRequested(e, t)
	case ledger.TypeApprovalGranted, ledger.TypeApprovalDenied:
		err = s.applyApprovalDecided(e, t)
	case ledger.TypeCredentialIssued:
		err = s.applyCredentialIssued(e, t)
	case ledger.TypeCredentialRevoked:
		err = s.applyCredentialRevoked(e, t)
	case ledger.TypeActionAuthorized, ledger.TypeActionDenied:
		err = s.applyAction(e, t)
	case ledger.TypeActionCompleted:
		err = s.applyActionCompleted(e, t)
	case ledger.TypeTaskCompleted, ledger.TypeTaskExpired, ledger.TypeTaskRevoked:
		err = s.applyEnded(e, t)
	case ledger.TypeTaskDelegated:
		err = s.applyDelegated(e, t)
	case ledger.TypeTaskHeld, ledger.TypeTaskReleased:
		err = s.applyHold(e, t)
	case ledger.TypeAuthRejected, ledger.TypeToolsHidden:
	}
	if err != nil {
		return err
	}
	s.events[t.ID].add(e.Index)
	return nil
}

func decode(e ledger.Entry, v any) error {
	if len(e.Event.Data) == 0 {
		return incoherent(e.Index, "%s without data", e.Event.Type)
	}
	// encoding/json's semantics, in the quicker implementation event.Read
	// decodes with: every event applied is decoded once more here.
	if err := jsonv1.Unmarshal(e.Event.Data, v); err != nil {
		return incoherent(e.Index, "%s data: %v", e.Event.Type, err)
	}
	return nil
}

func (s *State) applyRequested(e ledger.Entry) error {
	ev := &e.Event
	if s.tasks[ev.TaskID] != nil {
		return incoherent(e.Index, "task %s requested twice", ev.TaskID)
	}
	var d event.TaskRequested
	if err := decode(e, &d); err != nil {
		return err
	}
	if ev.Principal == "" || ev.Agent == "" {
		return incoherent(e.Index, "task.requested without principal or agent")
	}
	scope := Scope(d.Scope)
	if err := scope.Validate(); err != nil {
		return incoherent(e.Index, "task %s: %v", ev.TaskID, err)
	}
	if scope.Hash() != d.ScopeHash {
		return incoherent(e.Index, "task %s: scope_hash does not match its scope", ev.TaskID)
	}
	ttl, err := time.ParseDuration(d.TTL)
	if err != nil || ttl <= 0 {
		return incoherent(e.Index, "task %s: bad ttl %q", ev.TaskID, d.TTL)
	}
	if d.Parent != "" {
		p := s.tasks[d.Parent]
		if p == nil || p.State != StateActive {
			return incoherent(e.Index, "task %s: parent %s is not an active task", ev.TaskID, d.Parent)
		}
		if !scope.Within(p.Scope) {
			return incoherent(e.Index, "task %s: scope is not within its parent's", ev.TaskID)
		}
	}
	t := &Task{
		ID: ev.TaskID, State: StateRequested, Requester: ev.Principal, Agent: ev.Agent,
		Intent: string(ev.Bodies["intent"]), Scope: scope, ScopeHash: d.ScopeHash, TTL: ttl,
		Parent: d.Parent, Environment: d.Environment, CreatedAt: ev.Time,
		RequestedIndex: e.Index,
	}
	s.events[t.ID] = &eventList{}
	s.events[t.ID].add(e.Index)
	s.tasks[t.ID] = t
	s.order = append(s.order, t.ID)
	s.noteRequested(t)
	if d.Parent != "" {
		p := s.tasks[d.Parent]
		p.Children = append(p.Children, t.ID)
	}
	return nil
}

func (s *State) applyDecided(e ledger.Entry, t *Task) error {
	var d event.PolicyDecided
	if err := decode(e, &d); err != nil {
		return err
	}
	if d.Point != string(policy.PointTask) || t.State != StateRequested || t.DecisionID != "" {
		return nil // another point's decision, recorded under the task
	}
	if e.Event.DecisionID == "" || e.Event.PolicyVersion == "" {
		return incoherent(e.Index, "task decision without decision_id or policy_version")
	}
	t.DecisionID, t.PolicyVersion, t.Reasons = e.Event.DecisionID, e.Event.PolicyVersion, d.Reasons
	if d.Effect == string(policy.RequireApproval) {
		t.ApprovalsRequired = max(d.Obligations.Approvals, 1)
	}
	if limit := time.Duration(d.Obligations.MaxTTLSeconds) * time.Second; limit > 0 && t.TTL > limit {
		t.TTL = limit
	}
	return nil
}

func (s *State) applyActivated(e ledger.Entry, t *Task) error {
	var d event.TaskActivated
	if err := decode(e, &d); err != nil {
		return err
	}
	switch t.State {
	case StateRequested:
		if t.DecisionID == "" || t.ApprovalsRequired > 0 {
			return incoherent(e.Index, "task %s activated without an allowing decision", t.ID)
		}
	case StatePendingApproval:
		a := s.approvals[t.ApprovalID]
		if a == nil || a.Status != ApprovalGranted {
			return incoherent(e.Index, "task %s activated before its approvals were granted", t.ID)
		}
	default:
		return incoherent(e.Index, "task %s activated in state %s", t.ID, t.State)
	}
	if d.ExpiresAt.IsZero() {
		return incoherent(e.Index, "task %s activated without expires_at", t.ID)
	}
	t.State, t.ExpiresAt = StateActive, d.ExpiresAt
	return nil
}

func (s *State) applyTaskDenied(e ledger.Entry, t *Task) error {
	var d event.TaskDenied
	if err := decode(e, &d); err != nil {
		return err
	}
	if t.State != StateRequested && t.State != StatePendingApproval {
		return incoherent(e.Index, "task %s denied in state %s", t.ID, t.State)
	}
	if t.State == StatePendingApproval {
		if a := s.approvals[t.ApprovalID]; a == nil || a.Status != ApprovalDenied {
			return incoherent(e.Index, "task %s denied while its approval is not denied", t.ID)
		}
	}
	t.State, t.EndedAt, t.Reasons = StateDenied, e.Event.Time, d.Reasons
	return nil
}

func (s *State) applyApprovalRequested(e ledger.Entry, t *Task) error {
	var d event.ApprovalRequested
	if err := decode(e, &d); err != nil {
		return err
	}
	if d.ApprovalID == "" || s.approvals[d.ApprovalID] != nil {
		return incoherent(e.Index, "approval.requested with a missing or reused approval_id")
	}
	if d.Required < 1 || d.ExpiresAt.IsZero() {
		return incoherent(e.Index, "approval %s: approvals_required and expires_at are required", d.ApprovalID)
	}
	a := &Approval{
		ID: d.ApprovalID, Kind: d.Kind, TaskID: t.ID, ScopeHash: d.ScopeHash,
		PolicyVersion: e.Event.PolicyVersion, Required: d.Required, ExpiresAt: d.ExpiresAt, Reasons: d.Reasons,
		Tool: d.Tool, Operation: d.Operation, Resource: d.Resource, DataClass: d.DataClass, ArgsMAC: d.ArgsMAC,
		LegacyDigest: d.ArgsDigest, Arguments: e.Event.Bodies["arguments"], RequestedIndex: e.Index, Status: ApprovalPending,
	}
	switch d.Kind {
	case KindTask:
		if t.State != StateRequested || t.ApprovalsRequired == 0 {
			return incoherent(e.Index, "task approval requested for task %s in state %s without a decision asking for one", t.ID, t.State)
		}
		if d.ScopeHash != t.ScopeHash || e.Event.PolicyVersion != t.PolicyVersion {
			return incoherent(e.Index, "approval %s is not bound to task %s's scope and policy version", d.ApprovalID, t.ID)
		}
		t.State, t.ApprovalID = StatePendingApproval, a.ID
	case KindStepUp:
		if t.State != StateActive || d.Tool == "" || (d.ArgsMAC == "") == (d.ArgsDigest == "") ||
			(d.ArgsMAC != "" && !strings.HasPrefix(d.ArgsMAC, MACPrefix)) {
			return incoherent(e.Index, "step-up %s for task %s in state %s, or without tool and args_mac", d.ApprovalID, t.ID, t.State)
		}
	default:
		return incoherent(e.Index, "approval kind %q", d.Kind)
	}
	s.approvals[a.ID] = a
	if a.Kind == KindStepUp {
		s.noteStepUp(t, a.ID)
	}
	return nil
}

func (s *State) applyApprovalDecided(e ledger.Entry, t *Task) error {
	var d event.ApprovalDecided
	if err := decode(e, &d); err != nil {
		return err
	}
	a := s.approvals[d.ApprovalID]
	switch {
	case a == nil || a.TaskID != t.ID:
		return incoherent(e.Index, "decision on unknown approval %s of task %s", d.ApprovalID, t.ID)
	case a.Status != ApprovalPending:
		return incoherent(e.Index, "decision on approval %s, which is %s", a.ID, a.Status)
	case d.Approver == "" || d.Approver == t.Requester:
		return incoherent(e.Index, "approval %s decided by the task's requester or by nobody", a.ID)
	case slices.ContainsFunc(a.Decisions, func(x Decision) bool { return x.Approver == d.Approver }):
		return incoherent(e.Index, "approver %s decided approval %s twice", d.Approver, a.ID)
	case e.Event.Time.After(a.ExpiresAt) || !d.ExpiresAt.Equal(a.ExpiresAt):
		return incoherent(e.Index, "decision on approval %s after its expiry", a.ID)
	case !decisionBinds(d, e.Event.PolicyVersion, a):
		return incoherent(e.Index, "decision on approval %s is bound to another scope, call or policy version", a.ID)
	case a.Kind == KindTask && (t.State != StatePendingApproval || t.ScopeHash != d.ScopeHash):
		return incoherent(e.Index, "task approval %s decided while task %s is %s", a.ID, t.ID, t.State)
	case a.Kind == KindStepUp && t.State != StateActive:
		return incoherent(e.Index, "step-up %s decided while task %s is %s", a.ID, t.ID, t.State)
	}
	dec := Decision{Approver: d.Approver, Reason: d.Reason, Time: e.Event.Time, Decision: "approve"}
	if e.Event.Type == ledger.TypeApprovalDenied {
		dec.Decision = "deny"
		a.Status = ApprovalDenied
	}
	a.Decisions = append(a.Decisions, dec)
	if a.Status == ApprovalPending && a.Granted() >= a.Required {
		a.Status = ApprovalGranted
	}
	return nil
}

func (s *State) applyCredentialIssued(e ledger.Entry, t *Task) error {
	var d event.CredentialIssued
	if err := decode(e, &d); err != nil {
		return err
	}
	jti := e.Event.JTI
	switch {
	case jti == "" || s.creds[jti] != nil:
		return incoherent(e.Index, "credential.issued with a missing or reused jti")
	case t.State != StateActive:
		return incoherent(e.Index, "credential issued for task %s in state %s", t.ID, t.State)
	case e.Event.Agent != t.Agent:
		return incoherent(e.Index, "credential for task %s issued to %s, not the task's agent", t.ID, e.Event.Agent)
	}
	s.creds[jti] = &Credential{JTI: jti, TaskID: t.ID, Agent: e.Event.Agent, Subject: d.Subject, ExpiresAt: d.ExpiresAt, Binding: d.Binding}
	t.Credentials = append(t.Credentials, jti)
	return nil
}

func (s *State) applyCredentialRevoked(e ledger.Entry, t *Task) error {
	c := s.creds[e.Event.JTI]
	if c == nil || c.TaskID != t.ID || c.Revoked {
		return incoherent(e.Index, "credential.revoked for an unknown or already revoked credential of task %s", t.ID)
	}
	c.Revoked, c.RevokedAt = true, e.Event.Time
	return nil
}

func (s *State) applyAction(e ledger.Entry, t *Task) error {
	var d event.ActionDecided
	if err := decode(e, &d); err != nil {
		return err
	}
	if t.State != StateActive {
		return incoherent(e.Index, "%s under task %s in state %s", e.Event.Type, t.ID, t.State)
	}
	if c := s.creds[e.Event.JTI]; c == nil || c.TaskID != t.ID || c.Revoked {
		return incoherent(e.Index, "%s with a credential that is not a live credential of task %s", e.Event.Type, t.ID)
	}
	if e.Event.Type == ledger.TypeActionDenied {
		s.noteDecided(t, e, &d, false)
		return nil
	}
	_, flying := s.actions.get(d.ActionID)
	if _, done := s.recent.task(d.ActionID); d.ActionID == "" || flying || done {
		return incoherent(e.Index, "action.authorized with a missing or reused action_id")
	}
	if d.StepUp != "" {
		a := s.approvals[d.StepUp]
		if a == nil || a.Status != ApprovalGranted || a.UsedBy != "" || e.Event.Time.After(a.ExpiresAt) ||
			!consumes(d, e.Event.PolicyVersion, t.ID, a) {
			return incoherent(e.Index, "action %s consumes step-up %s, which does not cover it", d.ActionID, d.StepUp)
		}
		a.UsedBy = d.ActionID
	}
	if s.flyWindowed(t, d.ActionID, e.Event.JTI, d.Tool, d.Operation, e.Index) { // spill.go
		dt := actionDetailOf(e.Event.DecisionID, &d)
		dt.redact = s.sharedPaths(dt.redact)
		s.details.add(d.ActionID, dt)
	}
	s.noteDecided(t, e, &d, true)
	return nil
}

// decisionBinds reports whether an approver's decision d, recorded under
// policyVersion, is bound to what approval a asked: its scope or its call.
// Decisions on step-ups recorded before args_mac are held to the binding
// they had then: tool and args_digest.
func decisionBinds(d event.ApprovalDecided, policyVersion string, a *Approval) bool {
	if d.ScopeHash != a.ScopeHash || d.Tool != a.Tool || d.ArgsMAC != a.ArgsMAC || d.ArgsDigest != a.LegacyDigest ||
		policyVersion != a.PolicyVersion {
		return false
	}
	if a.Kind != KindStepUp || a.ArgsMAC == "" {
		return true
	}
	return d.Operation == a.Operation && d.Resource == a.Resource && d.DataClass == a.DataClass
}

// consumes reports whether the authorized call d, decided under
// policyVersion in task taskID, is the call step-up a covers. Step-ups
// recorded before args_mac are held to the binding they had then: task,
// tool and args_digest.
func consumes(d event.ActionDecided, policyVersion, taskID string, a *Approval) bool {
	if a.Kind != KindStepUp || a.TaskID != taskID {
		return false
	}
	if a.ArgsMAC == "" {
		return a.LegacyDigest != "" && a.Tool == d.Tool && a.LegacyDigest == d.ArgsDigest
	}
	return a.binds(taskID, actionCall(d, policyVersion))
}

func (s *State) applyActionCompleted(e ledger.Entry, t *Task) error {
	var d event.ActionCompleted
	if err := decode(e, &d); err != nil {
		return err
	}
	if !validStatus(d.Status) {
		return incoherent(e.Index, "action.completed of action %s with status %q", d.ActionID, d.Status)
	}
	f, ok := s.actions.get(d.ActionID)
	if !ok {
		if _, done := s.recent.task(d.ActionID); !done && d.ActionID != "" && s.landSpilled(t, &d, e.Index) {
			return nil // a call past the window (spill.go)
		}
	}
	if !ok || f.kind.taskID != t.ID {
		return incoherent(e.Index, "action.completed for an unknown or completed action of task %s", t.ID)
	}
	s.noteCompleted(t, f.kind.tool, f.kind.operation)
	s.done(d.ActionID, f, e.Index)
	return nil
}

func (s *State) applyEnded(e ledger.Entry, t *Task) error {
	var d event.TaskEnded
	if err := decode(e, &d); err != nil {
		return err
	}
	ok := t.State == StateActive || (t.State == StatePendingApproval && e.Event.Type != ledger.TypeTaskCompleted)
	if !ok {
		return incoherent(e.Index, "%s for task %s in state %s", e.Event.Type, t.ID, t.State)
	}
	switch e.Event.Type {
	case ledger.TypeTaskCompleted:
		t.State = StateCompleted
	case ledger.TypeTaskExpired:
		t.State = StateExpired
	default:
		t.State = StateRevoked
	}
	t.EndedAt, t.EndReason = e.Event.Time, d.Reason
	s.ended(t)
	return nil
}

func (s *State) applyDelegated(e ledger.Entry, t *Task) error {
	var d event.TaskDelegated
	if err := decode(e, &d); err != nil {
		return err
	}
	if c := s.tasks[d.Child]; c == nil || c.Parent != t.ID {
		return incoherent(e.Index, "task.delegated names %s, which is not a child of %s", d.Child, t.ID)
	}
	return nil
}
